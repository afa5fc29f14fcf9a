"""Streams an agency's CSV into valid Bets; rows that are not bets go to a rejects file."""

import csv
import datetime
import logging
import re
from collections.abc import Iterator
from pathlib import Path

from common.logs import event
from domain import Bet, InvalidBet, parse_birthdate, parse_non_negative_int

log = logging.getLogger(__name__)

COLUMNS = 5  # NAME,SURNAME,DOCUMENT,BIRTHDATE,NUMBER
# A byte that is not UTF-8, as read with errors="surrogateescape".
_BAD_BYTE = re.compile("[\udc80-\udcff]")


def parse_row(row: list[str], agency: int, today: datetime.date | None = None) -> Bet:
    """One CSV row as a valid Bet of this agency; raises ValueError saying why not."""
    if len(row) != COLUMNS:
        raise ValueError(f"{len(row)} fields instead of {COLUMNS}")
    text = "".join(row)
    if not text.isascii() and _BAD_BYTE.search(text):
        raise ValueError("not valid UTF-8")
    first, last, document, birthdate, number = (field.strip() for field in row)
    if not (document.isascii() and document.isdigit()):
        raise ValueError(f"DOCUMENT {document!r} is not numeric")
    bet = Bet(
        agency=agency,
        first_name=first,
        last_name=last,
        document=document,
        birthdate=parse_birthdate(birthdate),
        number=parse_non_negative_int(number, "NUMBER"),
    )
    try:
        bet.validate(today)
    except InvalidBet as exc:
        raise ValueError(str(exc)) from None
    return bet


class Rejects:
    """The rows refused, written once each (line, reason, the row as read)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._last_line = 0
        self._file = None
        self._writer = None
        # A file left by an earlier run would mix its rows with this run's.
        path.unlink(missing_ok=True)

    def add(self, line: int, reason: str, row: list[str]) -> None:
        if line <= self._last_line:  # re-read after a reconnect: already recorded
            return
        self._last_line = line
        self.count += 1
        log.warning(event("apuesta_rechazada", "fail", line=line, error=reason))
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(
                self.path, "w", encoding="utf-8", errors="surrogateescape", newline=""
            )
            self._writer = csv.writer(self._file)
            self._writer.writerow(["line", "reason", "row"])
        self._writer.writerow([line, reason, *row])
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class BetSource:
    """The agency's valid bets in file order; can restart from any position."""

    def __init__(self, path: Path, agency: int, rejects: Rejects) -> None:
        self.path = path
        self.agency = agency
        self.rejects = rejects
        self.total: int | None = None  # valid bets in the file, once read to the end

    def line_of(self, position: int) -> int | None:
        """The file line holding the bet at a position (for error messages; reads the file)."""
        with open(self.path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
            reader = csv.reader(f)
            found = 0
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                try:
                    parse_row(row, self.agency)
                except ValueError:
                    continue
                if found == position:
                    return reader.line_num
                found += 1
        return None

    def bets(self, start: int = 0) -> Iterator[Bet]:
        """Valid bets from position `start` on (positions count valid bets only)."""
        # surrogateescape: a bad byte spoils only its own row, which is then rejected.
        with open(self.path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
            reader = csv.reader(f)
            position = 0
            today = datetime.date.today()
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # blank line
                try:
                    bet = parse_row(row, self.agency, today)
                except ValueError as exc:
                    self.rejects.add(reader.line_num, str(exc), row)
                    continue
                if position >= start:
                    yield bet
                position += 1
            self.total = position
