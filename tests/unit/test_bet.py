"""The domain rules of a bet."""

import datetime

import pytest

from domain import Bet, InvalidBet, has_won, parse_birthdate, parse_non_negative_int

TODAY = datetime.date(2026, 11, 28)


def bet(**changes) -> Bet:
    fields = dict(
        agency=1,
        first_name="María José",
        last_name="Pérez, hijo",
        document="30904465",
        birthdate=datetime.date(1999, 3, 17),
        number=7574,
    )
    fields.update(changes)
    return Bet(**fields)


def is_valid(candidate: Bet) -> bool:
    try:
        candidate.validate(TODAY)
    except InvalidBet:
        return False
    return True


def test_a_plausible_bet_is_valid():
    assert is_valid(bet())


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"agency": 0}, "AGENCY 0"),
        ({"first_name": ""}, "FIRST_NAME is empty"),
        ({"last_name": "   "}, "LAST_NAME is empty"),
        ({"first_name": "x" * 101}, "at most 100"),
        ({"last_name": "a\nb"}, "control characters"),
        ({"document": ""}, "DOCUMENT ''"),
        ({"document": "1234567890123"}, "1 to 12 digits"),
        ({"document": "12a"}, "DOCUMENT '12a'"),
        ({"document": "١٢"}, "DOCUMENT"),
        ({"birthdate": datetime.date(2026, 11, 29)}, "in the future"),
        ({"number": 10000}, "NUMBER 10000 is not in 0..9999"),
    ],
)
def test_bet_breaking_a_rule_is_invalid_with_the_reason(changes, reason):
    with pytest.raises(InvalidBet, match=reason):
        bet(**changes).validate(TODAY)


def test_limits_are_inclusive():
    assert is_valid(bet(first_name="x" * 100, document="1" * 12, number=9999, birthdate=TODAY))
    assert is_valid(bet(number=0, document="0"))
    assert not is_valid(bet(first_name="x" * 101))


def test_has_won_compares_with_the_winning_number():
    assert has_won(bet(number=7574))
    assert not has_won(bet(number=7575))
    assert has_won(bet(number=12), winning_number=12)


@pytest.mark.parametrize("text", ["2000-1-01", "20000101", "2000-02-30", " 2000-01-01", "x"])
def test_birthdate_must_be_a_real_yyyy_mm_dd_date(text):
    with pytest.raises(ValueError, match="is not a date"):
        parse_birthdate(text)


@pytest.mark.parametrize("text", ["", "-1", "+1", " 1", "1_0", "٣", "1" * 19])
def test_non_negative_int_takes_ascii_digits_only(text):
    with pytest.raises(ValueError):
        parse_non_negative_int(text, "X")


def test_non_negative_int_parses_digits():
    assert parse_non_negative_int("0042", "X") == 42
