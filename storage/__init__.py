"""The only code that touches the data files: bets.csv, bets.db and their lock file."""

from domain import Bet, has_won
from storage.lottery import archive, is_complete
from storage.migrations import MigrationError
from storage.recovery import RecoveryError, recover
from storage.rows import load_bets
from storage.store import (
    AgencyClosed,
    BetStore,
    Committed,
    Draw,
    Finished,
    ReplayMismatch,
    Round,
    SequenceGap,
    StorageError,
    Stored,
)

__all__ = [
    "AgencyClosed",
    "Bet",
    "BetStore",
    "Committed",
    "Draw",
    "Finished",
    "MigrationError",
    "RecoveryError",
    "ReplayMismatch",
    "Round",
    "SequenceGap",
    "StorageError",
    "Stored",
    "archive",
    "has_won",
    "is_complete",
    "load_bets",
    "recover",
]
