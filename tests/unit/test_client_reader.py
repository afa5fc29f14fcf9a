"""Reading an agency's CSV: encodings, line ends, quoting, rejects, restarting."""

import csv
import datetime

import pytest

from client.reader import BetSource, Rejects, parse_row

GOOD = "Ana,Gómez,123,1990-05-01,42"


def source(tmp_path, content: bytes, agency=3):
    path = tmp_path / "agency.csv"
    path.write_bytes(content)
    return BetSource(path, agency, Rejects(tmp_path / "rejects.csv"))


@pytest.mark.parametrize(
    "content",
    [
        b"\xef\xbb\xbfAna,G\xc3\xb3mez,123,1990-05-01,42\r\nJuan,P,7,2000-01-01,7574\r\n",
        b"Ana,G\xc3\xb3mez,123,1990-05-01,42\nJuan,P,7,2000-01-01,7574",
        b'"Ana","G\xc3\xb3mez",123,1990-05-01,42\r\n\r\nJuan,P,7,2000-01-01,7574\r\n',
    ],
)
def test_bom_crlf_lf_quotes_and_blank_lines_all_read_the_same(tmp_path, content):
    bets = list(source(tmp_path, content).bets())
    assert [(b.agency, b.last_name, b.document, b.number) for b in bets] == [
        (3, "Gómez", "123", 42),
        (3, "P", "7", 7574),
    ]
    assert bets[0].birthdate == datetime.date(1990, 5, 1)


def test_quoted_fields_keep_commas_and_quotes(tmp_path):
    content = '"Pérez, hijo","O""Brien",1,1990-05-01,1\n'.encode()
    (bet,) = source(tmp_path, content).bets()
    assert (bet.first_name, bet.last_name) == ("Pérez, hijo", 'O"Brien')


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("Ana,Gómez,123,1990-05-01", "4 fields instead of 5"),
        ("Ana,Gómez,12a,1990-05-01,42", "DOCUMENT '12a' is not numeric"),
        ("Ana,Gómez,123,1990-02-30,42", "BIRTHDATE '1990-02-30' is not a date"),
        ("Ana,Gómez,123,1990-05-01,cuarenta", "NUMBER 'cuarenta' is not a non-negative"),
        ("Ana,Gómez,123,1990-05-01,10000", "NUMBER 10000 is not in 0..9999"),
        (",Gómez,123,1990-05-01,1", "FIRST_NAME is empty"),
        ("Ana,Gómez,123,2999-05-01,1", "in the future"),
    ],
)
def test_a_row_that_is_not_a_bet_is_refused_with_the_reason(row, reason):
    with pytest.raises(ValueError, match=reason):
        parse_row(next(csv.reader([row])), 1)


def test_rejected_rows_are_logged_written_counted_and_the_rest_goes_on(tmp_path, caplog):
    content = f"{GOOD}\nbad,row\n{GOOD}\nX,Y,1,1990-01-01,99999\n".encode()
    src = source(tmp_path, content)
    assert len(list(src.bets())) == 2
    assert src.rejects.count == 2
    src.rejects.close()
    rows = list(csv.reader(open(tmp_path / "rejects.csv", encoding="utf-8")))
    assert rows[0] == ["line", "reason", "row"]
    assert rows[1] == ["2", "2 fields instead of 5", "bad", "row"]
    assert rows[2][:2] == ["4", "NUMBER 99999 is not in 0..9999"]
    assert "action: apuesta_rechazada | result: fail | line: 2" in caplog.text


def test_invalid_utf8_spoils_only_its_own_row(tmp_path):
    content = b"Ana,G\xffmez,123,1990-05-01,42\n" + GOOD.encode() + b"\n"
    src = source(tmp_path, content)
    assert [b.document for b in src.bets()] == ["123"]
    assert src.rejects.count == 1


def test_restarting_from_a_position_skips_stored_bets_and_does_not_reject_twice(tmp_path):
    lines = [f"N{i},S,{i + 1},1990-01-01,{i}" for i in range(10)]
    lines.insert(3, "broken")
    src = source(tmp_path, ("\n".join(lines) + "\n").encode())
    assert [b.number for b in src.bets()] == list(range(10))
    assert [b.number for b in src.bets(7)] == [7, 8, 9]
    assert src.rejects.count == 1
    assert src.total == 10


def test_a_stale_rejects_file_from_an_earlier_run_is_removed(tmp_path):
    (tmp_path / "rejects.csv").write_text("old\n")
    src = source(tmp_path, (GOOD + "\n").encode())
    list(src.bets())
    assert not (tmp_path / "rejects.csv").exists()
