"""Opening bets.db the same way everywhere."""

import sqlite3
from pathlib import Path

# How long a statement waits for another connection's lock (SQLite's busy timeout).
BUSY_TIMEOUT_S = 10.0


def connect(
    path: Path, read_only: bool = False, busy_timeout_s: float = BUSY_TIMEOUT_S
) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, durable commits."""
    if read_only:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=busy_timeout_s
        )
    else:
        conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_s)
        conn.execute("PRAGMA journal_mode = WAL")
    # FULL: in WAL mode NORMAL may lose the last commits on power loss, and a batch is
    # acknowledged only once its commit is durable.
    conn.execute("PRAGMA synchronous = FULL")
    return conn
