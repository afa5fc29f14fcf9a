"""Start-up: bring the schema up to date and make bets.csv and bets.db agree again.

Runs once, in the server's main process, before any connection is served.
"""

import contextlib
import logging
import os
from pathlib import Path

from filelock import FileLock

from storage.database import connect
from storage.migrations import migrate
from storage.paths import StoragePaths
from storage.rows import CSV_ROWS, INSERT_BET, BadRow, db_rows, encode_rows, read_bets, utc_now

log = logging.getLogger(__name__)


class RecoveryError(RuntimeError):
    """The files cannot be reconciled without a person (e.g. an unreadable legacy CSV)."""


def recover(directory: str | Path) -> list[str]:
    """Migrate bets.db and reconcile bets.csv with it; return what was done (also logged)."""
    paths = StoragePaths(Path(directory))
    paths.directory.mkdir(parents=True, exist_ok=True)
    done: list[str] = []
    with FileLock(paths.lock, preserve_lock_file=True):
        conn = connect(paths.db)
        try:
            before, after = migrate(conn)
            if before != after:
                done.append(f"migrated bets.db from schema version {before} to {after}")
            recorded = conn.execute("SELECT length FROM csv_state").fetchone()[0]
            actual = paths.csv.stat().st_size if paths.csv.exists() else None
            is_new_db = before == 0
            if is_new_db and actual:
                done.append(_import_csv(conn, paths))
            elif actual is None and recorded == 0:
                paths.csv.touch()
            elif actual is None or actual < recorded:
                done.append(_rebuild_csv(conn, paths, recorded, actual))
            elif actual > recorded:
                _truncate(paths.csv, recorded)
                done.append(f"cut {actual - recorded} unacknowledged bytes off the end of bets.csv")
        finally:
            conn.close()
    for what in done:
        log.info("action: recovery | result: success | detail: %s", what)
    return done


def _import_csv(conn, paths: StoragePaths) -> str:
    """A bets.csv from before SQLite: import its complete lines, in order."""
    data = paths.csv.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    try:
        bets = [bet for _, bet in read_bets(complete.decode("utf-8"))]
    except (BadRow, UnicodeDecodeError) as exc:
        raise RecoveryError(f"cannot import {paths.csv}: {exc}") from exc
    positions: dict[int, int] = {}
    rows = []
    received = utc_now()
    for b in bets:
        seq = positions.get(b.agency, 0)
        positions[b.agency] = seq + 1
        rows += db_rows(b.agency, seq, [b], received)
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(INSERT_BET, rows)
    conn.execute("UPDATE csv_state SET length = ?", (len(complete),))
    conn.execute("COMMIT")
    if len(complete) < len(data):
        _truncate(paths.csv, len(complete))
    torn = len(data) - len(complete)
    return f"imported {len(bets)} bets from bets.csv into a new bets.db" + (
        f" (cut a torn last line of {torn} bytes)" if torn else ""
    )


def _rebuild_csv(conn, paths: StoragePaths, recorded: int, actual: int | None) -> str:
    """bets.csv missing or short: write it anew from the database, atomically."""
    tmp = paths.csv.with_suffix(".csv.rebuild")
    count = 0
    with open(tmp, "wb") as out:
        cursor = conn.execute(CSV_ROWS)
        while chunk := cursor.fetchmany(10_000):
            out.write(encode_rows(chunk))
            count += len(chunk)
        out.flush()
        os.fsync(out.fileno())
        size = out.tell()
    os.replace(tmp, paths.csv)
    _fsync_dir(paths.directory)
    conn.execute("UPDATE csv_state SET length = ?", (size,))
    state = "missing" if actual is None else f"{actual} bytes instead of {recorded}"
    return f"rebuilt bets.csv ({state}) from bets.db: {count} bets"


def _truncate(path: Path, length: int) -> None:
    with open(path, "r+b") as file:
        file.truncate(length)
        file.flush()
        os.fsync(file.fileno())


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    with contextlib.suppress(OSError):
        os.fsync(fd)
    os.close(fd)
