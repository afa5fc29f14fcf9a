"""Opening bets.db the same way everywhere."""

import sqlite3
from pathlib import Path

# How long a statement waits for another connection's lock (SQLite's busy timeout).
BUSY_TIMEOUT_S = 10.0
# "Now" as every timestamp in bets.db is written (the migrations' column defaults too).
SQL_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


def connect(
    path: Path,
    read_only: bool = False,
    busy_timeout_s: float = BUSY_TIMEOUT_S,
    any_thread: bool = False,
) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, durable commits.
    any_thread: used from several threads, one at a time (the caller serialises)."""
    if read_only:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro",
            uri=True,
            isolation_level=None,
            timeout=busy_timeout_s,
            check_same_thread=not any_thread,
        )
    else:
        conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_s)
        conn.execute("PRAGMA journal_mode = WAL")
    # FULL: in WAL mode NORMAL may lose the last commits on power loss, and a batch is
    # acknowledged only once its commit is durable.
    conn.execute("PRAGMA synchronous = FULL")
    return conn
