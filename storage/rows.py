"""bets.csv rows: how a Bet is written and read back (the course's six-column format)."""

import csv
import datetime
import io
from collections.abc import Iterable, Iterator
from pathlib import Path

from domain import Bet, parse_birthdate, parse_non_negative_int


class BadRow(ValueError):
    """A bets.csv row that is not a bet."""


# A bet's five fields in bets.db, in this order wherever a row is written or compared.
BET_COLUMNS = "first_name, last_name, document, birthdate, number"
INSERT_BET = (
    f"INSERT INTO bets (agency, seq, {BET_COLUMNS}, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# bets.csv rows from the database, in commit order.
CSV_ROWS = f"SELECT agency, {BET_COLUMNS} FROM bets ORDER BY id"


def utc_now() -> str:
    """The time as bets.db's timestamps write it (strftime's '%Y-%m-%dT%H:%M:%fZ')."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def bet_fields(bet: Bet) -> tuple:
    """The five fields of a bet as bets.db holds them (BET_COLUMNS)."""
    return (bet.first_name, bet.last_name, bet.document, bet.birthdate.isoformat(), bet.number)


def db_rows(agency: int, first_seq: int, bets: Iterable[Bet], received: str) -> list[tuple]:
    """Rows for INSERT_BET: bets at positions first_seq, first_seq + 1, …"""
    # bet_fields written out: this runs for every stored bet, a call per bet shows.
    return [
        (agency, first_seq + i, b.first_name, b.last_name, b.document, b.birthdate.isoformat(),
         b.number, received)
        for i, b in enumerate(bets)
    ]  # fmt: skip


def encode_rows(rows: Iterable[tuple]) -> bytes:
    """CSV rows (agency, first_name, last_name, document, birthdate, number) as UTF-8 bytes."""
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def rows_bytes(bets: Iterable[Bet]) -> bytes:
    """The CSV rows of some bets as UTF-8 bytes, ready for one append."""
    # bet_fields written out, as in db_rows: this runs for every stored bet.
    return encode_rows(
        (b.agency, b.first_name, b.last_name, b.document, b.birthdate.isoformat(), b.number)
        for b in bets
    )


def row_lines(bets: list[Bet]) -> list[bytes]:
    """Each bet's CSV row as bytes ending in \n, so a caller can append any slice of them."""
    data = rows_bytes(bets)
    lines = data.split(b"\n")
    if len(lines) == len(bets) + 1:  # one line per row: no field needed a line break
        return [line + b"\n" for line in lines[:-1]]
    return [rows_bytes([bet]) for bet in bets]


def row_to_bet(row: list[str]) -> Bet:
    """One parsed CSV row as a Bet; raises BadRow."""
    if len(row) != 6:
        raise BadRow(f"{len(row)} columns instead of 6")
    agency, first_name, last_name, document, birthdate, number = row
    try:
        return Bet(
            parse_non_negative_int(agency, "agency"),
            first_name,
            last_name,
            document,
            parse_birthdate(birthdate),
            parse_non_negative_int(number, "number"),
        )
    except ValueError as exc:
        raise BadRow(str(exc)) from None


def read_bets(text: str) -> Iterator[tuple[int, Bet]]:
    """(line number, Bet) for every row of some bets.csv text; raises BadRow naming the line."""
    reader = csv.reader(io.StringIO(text, newline=""))
    for row in reader:
        try:
            yield reader.line_num, row_to_bet(row)
        except BadRow as exc:
            raise BadRow(f"bets.csv line {reader.line_num}: {exc}") from None


def load_bets(path: str | Path = ".data/bets.csv") -> Iterator[Bet]:
    """Every bet in bets.csv, in storage order (the course's helper)."""
    with open(path, encoding="utf-8", newline="") as file:
        reader = csv.reader(file)
        for row in reader:
            try:
                yield row_to_bet(row)
            except BadRow as exc:
                raise BadRow(f"{path} line {reader.line_num}: {exc}") from None
