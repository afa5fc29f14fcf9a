"""The only code that touches the data files: bets.csv, bets.db and their lock file."""

from domain import Bet, has_won
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
    "has_won",
    "load_bets",
    "recover",
]
