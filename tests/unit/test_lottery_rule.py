"""The start-up rule: which stored lottery is continued, archived or refused."""

from dataclasses import replace

import pytest

from storage.lottery import Begin, Continue, LotteryMismatch, Rules, StoredLottery, decide

WANTED = Rules(lottery_id="B", agencies=3, winning_number=7574)


def stored(**changes) -> StoredLottery:
    base = StoredLottery(
        lottery_id="A",
        agencies=3,
        winning_number=7574,
        started_at="2026-12-01T08:00:00.000Z",
        bets=100,
        finished=frozenset({1}),
        drawn_at=None,
        told=0,
    )
    return replace(base, **changes)


DRAWN = {"finished": frozenset({1, 2, 3}), "drawn_at": "2026-12-01T08:01:00.000Z"}


def test_nothing_stored_begins_a_lottery_with_nothing_to_archive():
    assert decide(None, WANTED) == Begin("no lottery stored", archive=False)


@pytest.mark.parametrize(
    "state",
    [{}, DRAWN, {**DRAWN, "told": 3}, {"agencies": 1, "winning_number": 1}],
    ids=["interrupted", "drawn", "complete", "other rules"],
)
def test_another_lottery_id_archives_the_stored_lottery_whatever_its_state(state):
    assert decide(stored(**state), WANTED) == Begin("another deployment", archive=True)


def test_another_lottery_id_replaces_an_empty_lottery_without_archiving_it():
    empty = stored(bets=0, finished=frozenset())
    assert decide(empty, WANTED) == Begin("another deployment", archive=False)


@pytest.mark.parametrize("lottery_id", ["A", ""], ids=["same id", "no id"])
@pytest.mark.parametrize(
    "state", [{}, DRAWN, {**DRAWN, "told": 3}], ids=["open", "drawn", "complete"]
)
def test_the_same_or_no_id_with_the_same_rules_continues_complete_or_not(lottery_id, state):
    assert decide(stored(**state), replace(WANTED, lottery_id=lottery_id)) == Continue()


def test_no_id_continues_a_lottery_whatever_id_it_was_started_with():
    assert decide(stored(lottery_id="X"), replace(WANTED, lottery_id="")) == Continue()


def test_a_lottery_begun_before_rules_were_recorded_adopts_the_configuration():
    legacy = stored(lottery_id="", agencies=None, winning_number=None)
    assert decide(legacy, replace(WANTED, lottery_id="")) == Continue(adopt=True)


@pytest.mark.parametrize("lottery_id", ["", "B"], ids=["no id", "an id"])
def test_a_database_rebuilt_from_the_csv_adopts_the_configuration(lottery_id):
    rebuilt = stored(lottery_id=None, agencies=None, winning_number=None)
    assert decide(rebuilt, replace(WANTED, lottery_id=lottery_id)) == Continue(adopt=True)


def test_a_lottery_begun_before_ids_is_archived_by_a_deployment_with_an_id():
    legacy = stored(lottery_id="", agencies=None, winning_number=None)
    assert decide(legacy, WANTED) == Begin("another deployment", archive=True)


@pytest.mark.parametrize(
    ("rules", "reason"),
    [
        ({"agencies": 5}, "agencies changed"),
        ({"winning_number": 1}, "winning number changed"),
        ({"agencies": 5, "winning_number": 1}, "agencies changed and winning number changed"),
    ],
)
def test_other_rules_after_the_draw_archive_it_and_begin_anew(rules, reason):
    wanted = replace(WANTED, lottery_id="A", **rules)
    assert decide(stored(**DRAWN), wanted) == Begin(reason, archive=True)


def test_other_rules_on_an_empty_lottery_begin_anew_with_nothing_to_archive():
    empty = stored(bets=0, finished=frozenset())
    wanted = replace(WANTED, lottery_id="A", agencies=5)
    assert decide(empty, wanted) == Begin("agencies changed", archive=False)


def test_other_rules_before_the_draw_are_refused_naming_both_and_the_ways_out():
    wanted = replace(WANTED, lottery_id="A", agencies=5)
    with pytest.raises(LotteryMismatch) as raised:
        decide(stored(), wanted)
    message = str(raised.value)
    assert "the stored lottery A was started for AGENCIES=3 WINNING_NUMBER=7574" in message
    assert "the configuration says AGENCIES=5 WINNING_NUMBER=7574" in message
    assert "start with AGENCIES=3 WINNING_NUMBER=7574 to continue it" in message
    assert "python -m storage new-lottery" in message


def test_complete_means_drawn_and_each_of_its_own_agencies_told():
    assert not stored(**DRAWN, told=2).complete
    assert stored(**DRAWN, told=3).complete
    assert stored(**DRAWN, agencies=1, told=1).complete
    assert not stored(told=3).complete  # not drawn
