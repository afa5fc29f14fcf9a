"""The one transaction boundary of storage: both locks, BEGIN IMMEDIATE, COMMIT or ROLLBACK,
and every OSError or sqlite3 error turned into a StorageError."""

import contextlib
import sqlite3
from collections.abc import Callable, Iterator

from filelock import FileLock, Timeout

from storage.outcomes import DatabaseLocked, StorageError


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """Raise the storage layer's own errors, never sqlite3's or OSError."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise DatabaseLocked(
                f"could not {what}: the database is locked by another connection (a shell "
                f"such as make db in a transaction?): {exc}"
            ) from exc
        raise StorageError(f"could not {what}: {exc}") from exc
    except (OSError, sqlite3.Error, Timeout) as exc:
        raise StorageError(f"could not {what}: {exc}") from exc


class Transactions:
    """Write transactions of one process's BetStore.

    Every write takes the locks, deliveries included: SQLite before 3.51.3 can corrupt a WAL
    database when two connections write or checkpoint at the same moment (the WAL-reset bug),
    and this Python links SQLite 3.40.1, so writes are serialised across processes here.
    """

    def __init__(self, conn: sqlite3.Connection, mp_lock, file_lock: FileLock) -> None:
        self._conn = conn
        self._mp_lock = mp_lock
        self._file_lock = file_lock

    @contextlib.contextmanager
    def write(
        self, what: str, on_abort: Callable[[], None] | None = None, durable: bool = True
    ) -> Iterator[sqlite3.Connection]:
        """A write transaction named `what` (for errors). on_abort undoes what the block did
        outside the database; durable=False commits with synchronous=NORMAL (durable at the
        next full commit)."""
        conn = self._conn
        # Always the multiprocessing.Lock first, then the FileLock; released in reverse.
        with translated(what), self._mp_lock, self._file_lock:
            if not durable:
                conn.execute("PRAGMA synchronous = NORMAL")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    if on_abort is not None:
                        on_abort()
                    raise
            finally:
                if not durable:
                    conn.execute("PRAGMA synchronous = FULL")
