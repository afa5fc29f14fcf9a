"""BetStore: appends batches to bets.csv and bets.db as one truth, exactly once per position.

Build one BetStore per process, after any fork: it owns a FileLock, an open file and a SQLite
connection, none of which may be shared across processes.
"""

import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from filelock import FileLock

from common.logs import event
from storage.csvlog import CsvLog
from storage.database import BUSY_TIMEOUT_S, SQL_NOW, connect
from storage.migrations import load_migrations, schema_version
from storage.outcomes import Committed, Draw, Finished, Round, StorageError
from storage.paths import StoragePaths
from storage.planner import AgencyState, Plan
from storage.rows import BET_COLUMNS, INSERT_BET, row_lines, utc_now
from storage.transaction import Transactions, translated

log = logging.getLogger(__name__)

FaultHook = Callable[[str], None]
# Where a fault hook is called during a commit, in order (see server/faults.py).
FAULT_POINTS = (
    "before_csv_write",
    "csv_written",
    "before_commit",
    "committed",
    "before_draw_commit",
    "draw_committed",
)
# What a commit needs to know: the recorded CSV length and whether the draw happened, then
# per agency its last position (MAX over the UNIQUE (agency, seq) index: O(log n)) and
# whether it finished.
_CSV_AND_DRAW = "SELECT (SELECT length FROM csv_state), EXISTS (SELECT 1 FROM draw)"
_AGENCY_STATE = """
SELECT (SELECT MAX(seq) FROM bets WHERE agency = ?),
       EXISTS (SELECT 1 FROM agencies WHERE agency = ?)
"""
_UNANNOUNCED = "SELECT 1 FROM draw WHERE announced_at IS NULL"

# The agency's range of draw_winners, in stream order, each joined to its bet by the UNIQUE
# (agency, seq) key; see migration 0007.
WINNERS_SQL = (
    "SELECT b.document FROM draw_winners AS w"
    " JOIN bets AS b ON b.agency = w.agency AND b.seq = w.seq"
    " WHERE w.agency = ? ORDER BY w.seq"
)
# The draw's one scan of the bets (no index on the number is kept during ingestion).
_RECORD_WINNERS = (
    "INSERT INTO draw_winners (agency, seq) SELECT agency, seq FROM bets WHERE number = ?"
)


def _query(what: str):
    """A read of storage that raises StorageError, never sqlite3's errors."""

    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            with translated(what):
                return method(self, *args, **kwargs)

        return wrapper

    return decorate


class BetStore:
    """The write and query side of storage for one process."""

    def __init__(
        self,
        directory: str | Path,
        lock,
        fault: FaultHook | None = None,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
        checkpoints: bool = True,
    ) -> None:
        self.paths = StoragePaths(Path(directory))
        expected = len(load_migrations())
        self._fault = fault or (lambda point: None)
        with translated(f"open {self.paths.db}"):
            self._conn = connect(self.paths.db, busy_timeout_s=busy_timeout_s)
            if not checkpoints:
                # Replicated: Litestream checkpoints, between its reads of the WAL (an
                # application checkpoint could race it); the WAL grows until it does.
                self._conn.execute("PRAGMA wal_autocheckpoint = 0")
        if (version := schema_version(self._conn)) != expected:
            self._conn.close()
            raise StorageError(
                f"{self.paths.db} is at schema version {version}, expected {expected}: "
                "open it with storage.recover first"
            )
        try:
            with translated(f"open {self.paths.csv}"):
                self._csv = CsvLog(self.paths.csv)
        except StorageError:
            self._conn.close()
            raise
        file_lock = FileLock(self.paths.lock, preserve_lock_file=True)
        self._tx = Transactions(self._conn, lock, file_lock)
        self._delivered: set[int] = set()

    def close(self) -> None:
        """Release the file and the connection."""
        self._csv.close()
        self._conn.close()

    # --- writes ---------------------------------------------------------------------

    def commit(self, work: Round) -> Committed:
        """Every agency's batches, then every END, in one transaction: one lock, one CSV
        write, one commit (connections answered in the same worker turn share it).

        Each outcome is what the call alone would give: a batch whose positions are stored
        stores nothing (a replay), one past the position is a SequenceGap, one that resends
        other bets than its positions hold a ReplayMismatch, new bets after the agency's END
        or the draw AgencyClosed. The last END of the lottery's agencies records the draw.
        A write error raises StorageError and nothing of the round is stored.
        """
        for agency, batches in work.groups:
            if any(b.agency != agency for bets, _ in batches for b in bets):
                raise ValueError("every bet of a batch must belong to its agency")
        # Encoded before taking the lock, which then covers only the database work and one
        # write.
        lines = [[row_lines(list(bets)) for bets, _ in batches] for _, batches in work.groups]
        received = utc_now()
        csv_length = None

        def undo_csv() -> None:
            if csv_length is not None:
                self._csv.cut_to(csv_length)

        with self._tx.write("store", on_abort=undo_csv) as conn:
            csv_length, drawn = conn.execute(_CSV_AND_DRAW).fetchone()
            plan = Plan(received, bool(drawn))
            outcomes = [
                plan.group(agency, self._agency(agency), batches, group_lines, self._stored)
                for (agency, batches), group_lines in zip(work.groups, lines, strict=True)
            ]
            if plan.rows:
                self._append(conn, plan, csv_length)
            ends, drew = self._record_ends(conn, work)
            unannounced = bool(ends) and conn.execute(_UNANNOUNCED).fetchone() is not None
            if drew:
                self._fault("before_draw_commit")
            if plan.rows:
                self._fault("before_commit")
        with translated("store"):
            if plan.rows:
                self._fault("committed")
            if drew:
                self._fault("draw_committed")
        if plan.rows:
            # Made durable after the lock is released: writers overlap their flushes (the
            # kernel coalesces them) and the lock is held for one fsync per round, SQLite's.
            # Nothing is acknowledged before this returns; a crash before it leaves bets.csv
            # shorter than recorded, which recovery rebuilds from the database.
            with translated("flush bets.csv"):
                self._csv.flush()
        if unannounced:
            # The draw this round ran, or one a failure left unlogged. Should this fail, the
            # ENDs are answered `wait` and their resending announces it.
            self.announce_draw()
        return Committed(outcomes, ends, drawn=bool(drawn) or drew)

    def _agency(self, agency: int) -> AgencyState:
        last_seq, finished = self._conn.execute(_AGENCY_STATE, (agency, agency)).fetchone()
        return AgencyState(0 if last_seq is None else last_seq + 1, bool(finished))

    def _stored(self, agency: int, first: int, last: int) -> dict[int, tuple]:
        rows = self._conn.execute(
            f"SELECT seq, {BET_COLUMNS} FROM bets WHERE agency = ? AND seq BETWEEN ? AND ?",
            (agency, first, last),
        )
        return {row[0]: row[1:] for row in rows}

    def _append(self, conn: sqlite3.Connection, plan: Plan, csv_length: int) -> None:
        data = b"".join(plan.lines)
        self._fault("before_csv_write")
        self._csv.write_at(csv_length, data)
        self._fault("csv_written")
        conn.executemany(INSERT_BET, plan.rows)
        conn.execute("UPDATE csv_state SET length = ?", (csv_length + len(data),))

    def _record_ends(self, conn: sqlite3.Connection, work: Round) -> tuple[list[Finished], bool]:
        if not work.ends:
            return [], False
        newly = []
        for agency in work.ends:
            cur = conn.execute(
                f"INSERT OR IGNORE INTO agencies (agency, finished_at) VALUES (?, {SQL_NOW})",
                (agency,),
            )
            newly.append(cur.rowcount == 1)
        drew, count = self._draw_if_complete(conn, work.agencies, work.winning_number)
        # Only the END that completed the lottery ran the draw.
        ends = [Finished(n, drew and i == len(newly) - 1, count) for i, n in enumerate(newly)]
        return ends, drew

    def draw_if_complete(self, agencies: int, winning_number: int) -> bool:
        """Record the draw if every agency 1..agencies finished and it is not recorded yet."""
        with self._tx.write("record the draw") as conn:
            drew, _ = self._draw_if_complete(conn, agencies, winning_number)
        return drew

    def record_deliveries(self, agencies: Iterable[int]) -> None:
        """Note that these agencies were sent their whole winners list (each once per
        process; a worker records a turn's deliveries in one transaction).

        Commits with synchronous=NORMAL: in WAL mode the record becomes durable with the next
        full commit. Losing it in a crash only makes the lottery read as "drawn, not every
        agency told" instead of complete (stats, archive notes); no decision depends on it.
        """
        new = sorted(set(agencies) - self._delivered)
        if not new:
            return
        with self._tx.write("record the deliveries", durable=False) as conn:
            conn.executemany(
                f"INSERT OR IGNORE INTO deliveries (agency, delivered_at) VALUES (?, {SQL_NOW})",
                [(agency,) for agency in new],
            )
        self._delivered.update(new)

    def announce_draw(self) -> None:
        """Log the draw (`action: sorteo`) once per lottery: the mark in the database
        survives restarts, so a draw committed by a server that died before logging it is
        logged by the next one, and two workers never both log it."""
        with self._tx.write("mark the draw as announced") as conn:
            row = conn.execute("SELECT announced_at FROM draw").fetchone()
            if row is None or row[0] is not None:
                return
            log.info(event("sorteo", "success"))
            conn.execute(f"UPDATE draw SET announced_at = {SQL_NOW}")

    def _draw_if_complete(self, conn, agencies: int, winning_number: int) -> tuple[bool, int]:
        if agencies < 1:  # a lottery of no agency has nobody to finish it: never drawn
            return False, 0
        count = conn.execute(
            "SELECT COUNT(*) FROM agencies WHERE agency BETWEEN 1 AND ?", (agencies,)
        ).fetchone()[0]
        if count < agencies:
            return False, count
        cur = conn.execute(
            f"INSERT OR IGNORE INTO draw (id, drawn_at, winning_number) VALUES (1, {SQL_NOW}, ?)",
            (winning_number,),
        )
        drew = cur.rowcount == 1
        if drew:  # the winners, in the same transaction: exactly as durable as the draw
            started = time.perf_counter()
            found = conn.execute(_RECORD_WINNERS, (winning_number,)).rowcount
            log.info(event("draw_winners", "success", winners=found,
                           ms=f"{(time.perf_counter() - started) * 1000:.1f}"))  # fmt: skip
        return drew, count

    # --- queries --------------------------------------------------------------------

    @_query("read the position")
    def position(self, agency: int) -> int:
        """How many of the agency's bets are stored (its next seq)."""
        return self._agency(agency).stored_up_to

    @_query("read the finished agencies")
    def finished_agencies(self) -> set[int]:
        """The agencies that sent END."""
        return {r[0] for r in self._conn.execute("SELECT agency FROM agencies")}

    @_query("read the draw")
    def draw(self) -> Draw | None:
        """The lottery's draw, if it happened."""
        row = self._conn.execute(
            "SELECT drawn_at, winning_number, announced_at FROM draw"
        ).fetchone()
        return None if row is None else Draw(*row)

    @_query("read the winners")
    def winners(self, agency: int) -> list[str]:
        """The documents of the agency's winning bets in stream order (empty before the draw)."""
        return [r[0] for r in self._conn.execute(WINNERS_SQL, (agency,))]
