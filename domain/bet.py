"""A bet and the rules a bet must follow, whoever made it (wire, CSV file, storage)."""

import datetime
import re
from typing import NamedTuple

DEFAULT_WINNING_NUMBER = 7574
MAX_NAME_CHARS = 100
MAX_NUMBER = 9999
MAX_DOCUMENT_DIGITS = 12
# Large enough for any position or id, small enough for SQLite's 64-bit integers.
MAX_INT_DIGITS = 18

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class InvalidBet(ValueError):
    """A bet that breaks a domain rule; the message says which and why."""


def parse_non_negative_int(text: str, what: str) -> int:
    """Parse ASCII digits only: int() would also take '+1', ' 1', '1_0' and other scripts' digits."""
    if not text or not text.isascii() or not text.isdigit():
        raise ValueError(f"{what} {text!r} is not a non-negative integer")
    if len(text) > MAX_INT_DIGITS:
        raise ValueError(f"{what} {text!r} is too large")
    return int(text)


def parse_birthdate(text: str) -> datetime.date:
    """Parse YYYY-MM-DD strictly (fromisoformat alone also takes '20000101' and week dates)."""
    if not _DATE.fullmatch(text):
        raise ValueError(f"BIRTHDATE {text!r} is not a date (YYYY-MM-DD)")
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"BIRTHDATE {text!r} is not a date") from None


class Bet(NamedTuple):
    """One bet, in the course's field order: agency, names, document, birthdate, number.

    Immutable; a NamedTuple rather than a frozen dataclass because it is built once per bet
    on both sides of the wire, and constructs three times faster.
    """

    agency: int
    first_name: str
    last_name: str
    document: str
    birthdate: datetime.date
    number: int

    def validate(self, today: datetime.date | None = None) -> None:
        """Raise InvalidBet naming the first rule this bet breaks."""
        if self.agency < 1:
            raise InvalidBet(f"AGENCY {self.agency} is not a positive agency number")
        for key, name in (("FIRST_NAME", self.first_name), ("LAST_NAME", self.last_name)):
            _check_name(key, name)
        doc = self.document
        if not (doc.isascii() and doc.isdigit() and 1 <= len(doc) <= MAX_DOCUMENT_DIGITS):
            raise InvalidBet(f"DOCUMENT {doc!r} is not 1 to {MAX_DOCUMENT_DIGITS} digits")
        if self.birthdate > (today or datetime.date.today()):
            raise InvalidBet(f"BIRTHDATE {self.birthdate.isoformat()} is in the future")
        if not 0 <= self.number <= MAX_NUMBER:
            raise InvalidBet(f"NUMBER {self.number} is not in 0..{MAX_NUMBER}")


def _check_name(key: str, name: str) -> None:
    if not name.strip():
        raise InvalidBet(f"{key} is empty")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidBet(f"{key} has {len(name)} characters, at most {MAX_NAME_CHARS} allowed")
    # Control characters (line breaks above all) would make CSV rows and logs ambiguous.
    if not name.isprintable():
        raise InvalidBet(f"{key} {name!r} contains control characters")


def has_won(bet: Bet, winning_number: int = DEFAULT_WINNING_NUMBER) -> bool:
    """Whether the bet won: its number is the drawn number (the course's helper)."""
    return bet.number == winning_number
