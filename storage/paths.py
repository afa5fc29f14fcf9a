"""Where the storage files live under STORAGE_DIR."""

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StoragePaths:
    directory: Path

    @property
    def csv(self) -> Path:
        return self.directory / "bets.csv"

    @property
    def db(self) -> Path:
        return self.directory / "bets.db"

    @property
    def lock(self) -> Path:
        return self.directory / "bets.csv.lock"
