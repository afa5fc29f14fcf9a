"""What storage calls return and raise: the outcome of each batch and END, the work of one
commit, and the storage layer's own error (never sqlite3's or OSError)."""

from collections.abc import Sequence
from dataclasses import dataclass

from domain import Bet

NEW_LOTTERY_HINT = (
    "a new deployment (a new LOTTERY_ID) begins a new lottery, "
    "or stop the server and run: python -m storage new-lottery"
)


class StorageError(Exception):
    """The storage files could not be read or written; nothing of the call was stored."""


class DatabaseLocked(StorageError):
    """Another SQLite connection (a `make db` shell in a transaction, say) held the database
    past the busy timeout: nothing was stored, asking again later will work."""


class SequenceGap(Exception):
    """A batch starts beyond the agency's position: earlier bets are missing."""

    def __init__(self, agency: int, expected: int, got: int) -> None:
        super().__init__(
            f"agency {agency}: batch starts at position {got} but the next expected "
            f"position is {expected}"
        )
        self.expected = expected


class ReplayMismatch(Exception):
    """A batch resends a position that holds a different bet: refused whole. index counts the
    batch's bets from 1; seq is the position."""

    def __init__(self, index: int, seq: int) -> None:
        super().__init__(f"position {seq} holds another bet than the batch's bet {index}")
        self.index, self.seq = index, seq


class AgencyClosed(Exception):
    """New bets for an agency that already finished, or after the draw."""

    def __init__(self, agency: int, drawn: bool) -> None:
        if drawn:
            reason = f"the draw already happened; new bets are refused ({NEW_LOTTERY_HINT})"
        else:
            reason = f"agency {agency} already sent END; new bets are refused"
        super().__init__(reason)


@dataclass(frozen=True)
class Stored:
    """What storing a batch did: bets newly stored and the agency's position afterwards."""

    stored: int
    position: int


@dataclass(frozen=True)
class Finished:
    """What an END did: whether it was new, and whether it completed the lottery's draw."""

    newly: bool
    drew: bool
    finished_count: int


@dataclass(frozen=True, kw_only=True)
class Round:
    """What one commit writes: batches per agency (in order), then ENDs, for a lottery of
    `agencies` whose draw, once they all finished, is `winning_number`."""

    groups: Sequence[tuple[int, Sequence[tuple[Sequence[Bet], int | None]]]]
    ends: Sequence[int]
    agencies: int
    winning_number: int


@dataclass(frozen=True)
class Committed:
    """Per group, each batch's outcome; per END, what it did."""

    bets: list[list]  # of Stored | SequenceGap | ReplayMismatch | AgencyClosed
    ends: list[Finished]
    drawn: bool = False  # the draw is stored once this round committed (by it or before)


@dataclass(frozen=True)
class Draw:
    drawn_at: str
    winning_number: int
    announced_at: str | None = None
