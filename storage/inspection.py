"""Read-only views of the stored lottery, for people and for `python -m storage`."""

import csv
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from storage.database import connect
from storage.paths import StoragePaths
from storage.rows import CSV_ROWS


class NoDatabase(FileNotFoundError):
    """There is no bets.db to inspect."""


@dataclass(frozen=True)
class AgencySummary:
    agency: int
    bets: int
    winners: int
    finished: bool


def _open(directory: str | Path):
    paths = StoragePaths(Path(directory))
    if not paths.db.exists():
        raise NoDatabase(f"no database at {paths.db}")
    return paths, connect(paths.db, read_only=True)


def summary(directory: str | Path) -> tuple[list[AgencySummary], tuple[str, int] | None]:
    """Per agency: bets, winners, finished; and the draw (when, number) if it happened."""
    _, conn = _open(directory)
    try:
        rows = [
            AgencySummary(a, b, w, bool(f))
            for a, b, w, f in conn.execute(
                "SELECT agency, bets, winners, finished FROM agency_summary"
            )
        ]
        draw = conn.execute("SELECT drawn_at, winning_number FROM draw").fetchone()
        return rows, draw
    finally:
        conn.close()


def winners(directory: str | Path, agency: int) -> list[tuple[str, str, str]]:
    """(document, first name, last name) of the agency's winners, in stream order."""
    _, conn = _open(directory)
    try:
        return conn.execute(
            "SELECT document, first_name, last_name FROM winners WHERE agency = ?", (agency,)
        ).fetchall()
    finally:
        conn.close()


def check(directory: str | Path) -> tuple[bool, str]:
    """Whether bets.csv and bets.db hold the same rows in the same order, and if not the
    first difference."""
    paths, conn = _open(directory)
    # Under the writers' FileLock the two files are between batches, so they must agree.
    with FileLock(paths.lock, preserve_lock_file=True):
        try:
            conn.execute("BEGIN")
            recorded = conn.execute("SELECT length FROM csv_state").fetchone()[0]
            db_rows = conn.execute(CSV_ROWS)
            if not paths.csv.exists():
                return False, f"{paths.csv} is missing"
            size = paths.csv.stat().st_size
            if size != recorded:
                return False, f"bets.csv has {size} bytes, the database records {recorded}"
            count = 0
            with open(paths.csv, encoding="utf-8", newline="") as file:
                csv_rows = csv.reader(file)
                while True:
                    csv_row = next(csv_rows, None)
                    db_row = db_rows.fetchone()
                    if csv_row is None and db_row is None:
                        break
                    count += 1
                    expected = None if db_row is None else [str(v) for v in db_row]
                    if csv_row != expected:
                        return False, (
                            f"row {count} differs: bets.csv has {csv_row}, bets.db has {expected}"
                        )
            return True, f"bets.csv and bets.db agree: {count} bets"
        finally:
            conn.close()
