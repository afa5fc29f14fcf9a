"""Lottery rounds: a complete lottery (drawn, every agency told its winners) is archived under
previous/<time>/ and a new one begins with empty files."""

import datetime
import shutil
from pathlib import Path

from filelock import FileLock

from storage.database import connect
from storage.paths import StoragePaths

# Everything one lottery's storage consists of (the lock file stays: see filelock's docs).
STORAGE_FILES = ("bets.csv", "bets.db", "bets.db-wal", "bets.db-shm")


def is_complete(directory: str | Path, agencies: int) -> bool:
    """Whether the lottery in directory was drawn and agencies 1..N all got their winners.
    The database must be at the current schema (run storage.recover first)."""
    paths = StoragePaths(Path(directory))
    if not paths.db.exists():
        return False
    conn = connect(paths.db, read_only=True)
    try:
        drawn = conn.execute("SELECT COUNT(*) FROM draw").fetchone()[0] > 0
        told = conn.execute(
            "SELECT COUNT(*) FROM deliveries WHERE agency BETWEEN 1 AND ?", (agencies,)
        ).fetchone()[0]
    finally:
        conn.close()
    return drawn and told >= agencies


def archive(directory: str | Path) -> Path | None:
    """Move the lottery's files to previous/<time>/ (None if there were none). Only with the
    server stopped: a running server would go on writing to the moved files."""
    paths = StoragePaths(Path(directory))
    with FileLock(paths.lock, preserve_lock_file=True):
        present = [paths.directory / n for n in STORAGE_FILES if (paths.directory / n).exists()]
        if not present:
            return None
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        target = paths.directory / "previous" / stamp
        target.mkdir(parents=True)
        for path in present:
            shutil.move(path, target / path.name)
    return target
