"""The only code that touches the data files: bets.csv, bets.db and their lock file."""

from domain import Bet, has_won
from storage.lottery import (
    Lottery,
    LotteryMismatch,
    Rules,
    archive,
    open_lottery,
    read_lottery,
)
from storage.migrations import MigrationError
from storage.outcomes import (
    AgencyClosed,
    Committed,
    DatabaseLocked,
    Draw,
    Finished,
    ReplayMismatch,
    Round,
    SequenceGap,
    StorageError,
    Stored,
)
from storage.recovery import RecoveryError, recover
from storage.rows import load_bets
from storage.store import BetStore

__all__ = [
    "AgencyClosed",
    "Bet",
    "BetStore",
    "Committed",
    "DatabaseLocked",
    "Draw",
    "Finished",
    "Lottery",
    "LotteryMismatch",
    "MigrationError",
    "RecoveryError",
    "ReplayMismatch",
    "Round",
    "Rules",
    "SequenceGap",
    "StorageError",
    "Stored",
    "archive",
    "has_won",
    "load_bets",
    "open_lottery",
    "read_lottery",
    "recover",
]
