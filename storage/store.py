"""BetStore: appends batches to bets.csv and bets.db as one truth, exactly once per position.

Build one BetStore per process, after any fork: it owns a FileLock, an open file and a SQLite
connection, none of which may be shared across processes.
"""

import contextlib
import datetime
import functools
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from common.logs import event
from domain import Bet
from storage.database import connect
from storage.migrations import load_migrations, schema_version
from storage.paths import StoragePaths
from storage.rows import row_lines

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
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
# What a commit needs to know: the recorded CSV length and whether the draw happened, then
# per agency its last position (MAX over the UNIQUE (agency, seq) index: O(log n)) and
# whether it finished.
_CSV_AND_DRAW = "SELECT (SELECT length FROM csv_state), EXISTS (SELECT 1 FROM draw)"
_AGENCY_STATE = """
SELECT (SELECT MAX(seq) FROM bets WHERE agency = ?),
       EXISTS (SELECT 1 FROM agencies WHERE agency = ?)
"""


# One range of the (agency, number, seq) index, in stream order; see migration 0004.
WINNERS_SQL = (
    "SELECT document FROM bets"
    " WHERE agency = ? AND number = (SELECT winning_number FROM draw) ORDER BY seq"
)


NEW_LOTTERY_HINT = (
    "a new deployment (a new LOTTERY_ID) begins a new lottery, "
    "or stop the server and run: python -m storage new-lottery"
)


def _closed_reason(agency: int, drawn: bool) -> str:
    if drawn:
        return f"the draw already happened; new bets are refused ({NEW_LOTTERY_HINT})"
    return f"agency {agency} already sent END; new bets are refused"


class StorageError(Exception):
    """The storage files could not be read or written; nothing of the call was stored."""


def _storage_errors(method):
    """Every entry point raises the storage layer's own error, never sqlite3's or OSError."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"{method.__name__.strip('_')}: {exc}") from exc

    return wrapper


class SequenceGap(Exception):
    """A batch starts beyond the agency's position: earlier bets are missing."""

    def __init__(self, agency: int, expected: int, got: int) -> None:
        super().__init__(
            f"agency {agency}: batch starts at position {got} but the next expected "
            f"position is {expected}"
        )
        self.expected = expected


class ReplayMismatch(Exception):
    """A batch resends a position that holds a different bet: refused whole."""

    def __init__(self, index: int, seq: int) -> None:
        super().__init__(f"bet {index}: position {seq} already holds a different bet")
        self.index, self.seq = index, seq


class AgencyClosed(Exception):
    """New bets for an agency that already finished, or after the draw."""


@dataclass(frozen=True)
class Stored:
    """What a store call did: bets newly stored and the agency's position afterwards."""

    stored: int
    position: int


@dataclass(frozen=True)
class Finished:
    """What an END did: whether it was new, and whether it completed the lottery's draw."""

    newly: bool
    drew: bool
    finished_count: int


@dataclass(frozen=True)
class Round:
    """What one commit writes: batches per agency (in order), then ENDs."""

    groups: Sequence[tuple[int, Sequence[tuple[Sequence[Bet], int | None]]]]
    ends: Sequence[int]
    agencies: int = 0  # the lottery's agency count, for the draw (with ends)
    winning_number: int = 0


@dataclass(frozen=True)
class Committed:
    """Per group, each batch's outcome; per END, what it did."""

    bets: list[list["Stored | SequenceGap | AgencyClosed"]]
    ends: list[Finished]


@dataclass
class _Plan:
    received: str
    rows: list[tuple] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)
    positions: dict[int, int] = field(default_factory=dict)  # agency -> next planned position

    def add(self, agency: int, position: int, bets, lines: list[bytes]) -> None:
        received = self.received
        rows = [
            (agency, position + i, b.first_name, b.last_name, b.document,
             b.birthdate.isoformat(), b.number, received)
            for i, b in enumerate(bets)
        ]  # fmt: skip
        self.rows += rows
        self.lines += lines

    def planned(self, agency: int, seq: int) -> tuple | None:
        """The five bet fields this round plans for a position (a replay within one round is
        rare: a scan costs less than indexing every row of every round)."""
        for row in reversed(self.rows):
            if row[0] == agency and row[1] == seq:
                return row[2:7]
        return None


@dataclass(frozen=True)
class Draw:
    drawn_at: str
    winning_number: int
    announced_at: str | None = None


class BetStore:
    """The write and query side of storage for one process."""

    def __init__(self, directory: str | Path, lock, fault: FaultHook | None = None) -> None:
        self.paths = StoragePaths(Path(directory))
        expected = len(load_migrations())
        self._mp_lock = lock
        self._file_lock = FileLock(self.paths.lock, preserve_lock_file=True)
        self._fault = fault or (lambda point: None)
        try:
            self._conn = connect(self.paths.db)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open {self.paths.db}: {exc}") from exc
        if (version := schema_version(self._conn)) != expected:
            self._conn.close()
            raise StorageError(
                f"{self.paths.db} is at schema version {version}, expected {expected}: "
                "open it with storage.recover first"
            )
        try:
            self._csv_fd = os.open(self.paths.csv, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            self._conn.close()
            raise StorageError(f"cannot open {self.paths.csv}: {exc}") from exc
        self._delivered: set[int] = set()

    def close(self) -> None:
        """Release the file and the connection."""
        os.close(self._csv_fd)
        self._conn.close()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        # Always the multiprocessing.Lock first, then the FileLock; released in reverse.
        with self._mp_lock, self._file_lock:
            yield

    # --- writes ---------------------------------------------------------------------

    def store(self, agency: int, bets: Sequence[Bet], seq: int | None = None) -> Stored:
        """Store one batch of an agency's bets durably; idempotent when seq is given.

        Raises SequenceGap, AgencyClosed or StorageError, storing nothing of the batch.
        """
        (outcome,) = self.store_many(agency, [(bets, seq)])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def store_many(
        self, agency: int, batches: Sequence[tuple[Sequence[Bet], int | None]]
    ) -> list[Stored | SequenceGap | AgencyClosed]:
        """Store several batches of one agency, in order, with one lock, one CSV write and one
        commit (group commit); the outcome of each is what storing them one by one would give.

        Bets whose position is already stored are skipped (a replay stores nothing); a batch
        starting past the position is a SequenceGap; new bets of an agency that finished, or
        after the draw, are AgencyClosed. A write error raises StorageError: nothing stored.
        """
        return self.commit(Round([(agency, batches)], [])).bets[0]

    def finish(self, agency: int, agencies: int, winning_number: int) -> Finished:
        """Record the agency's END; when it is the last of 1..agencies, record the draw too."""
        return self.commit(Round([], [agency], agencies, winning_number)).ends[0]

    def commit(self, work: "Round") -> "Committed":
        """Every agency's batches, then every END, in one transaction: one lock, one CSV
        write, one commit (connections answered in the same worker turn share it).

        Each outcome is what the call alone would give. A write error raises StorageError and
        nothing of the round is stored.
        """
        for agency, batches in work.groups:
            if any(b.agency != agency for bets, _ in batches for b in bets):
                raise ValueError("every bet of a batch must belong to its agency")
        # Encoded before taking the lock, which then covers only the database work and one
        # write: the CSV lines of each batch, and one timestamp for the round (a per-row SQL
        # default would cost a call per row).
        lines = [[row_lines(list(bets)) for bets, _ in batches] for _, batches in work.groups]
        received = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        with self._writing():
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            csv_length = None
            try:
                csv_length, drawn = conn.execute(_CSV_AND_DRAW).fetchone()
                plan = _Plan(received)
                outcomes = [
                    self._plan_group(plan, agency, batches, group_lines, drawn)
                    for (agency, batches), group_lines in zip(work.groups, lines, strict=True)
                ]
                if plan.rows:
                    self._append(plan, csv_length)
                ends, drew = self._record_ends(work)
                if not plan.rows and not work.ends:
                    conn.execute("ROLLBACK")
                    return Committed(outcomes, [])
                if drew:
                    self._fault("before_draw_commit")
                if plan.rows:
                    self._fault("before_commit")
                conn.execute("COMMIT")
            except BaseException as exc:
                self._abort(csv_length)
                if isinstance(exc, (OSError, sqlite3.Error)):
                    raise StorageError(f"could not store: {exc}") from exc
                raise
            if plan.rows:
                self._fault("committed")
        if drew:
            self._fault("draw_committed")
        if plan.rows:
            self._flush_csv()
        return Committed(outcomes, ends)

    def _plan_group(self, plan: "_Plan", agency, batches, batch_lines, drawn: bool) -> list:
        """Decide each batch's outcome from the agency's position; add its new rows."""
        last_seq, finished = self._conn.execute(_AGENCY_STATE, (agency, agency)).fetchone()
        stored_up_to = 0 if last_seq is None else last_seq + 1
        # Two connections of one agency in one round (a takeover under way): the second
        # goes on from what the first planned, as if it had committed first.
        position = plan.positions.get(agency, stored_up_to)
        outcomes: list[Stored | SequenceGap | AgencyClosed | ReplayMismatch] = []
        for (bets, seq), lines in zip(batches, batch_lines, strict=True):
            start = position if seq is None else seq
            if start > position:
                outcomes.append(SequenceGap(agency, position, start))
                continue
            skip = position - start
            if skip:  # a replay: what it resends must be what those positions hold
                mismatch = self._replay_mismatch(plan, agency, bets[:skip], start, stored_up_to)
                if mismatch is not None:
                    outcomes.append(mismatch)
                    continue
            fresh = bets[skip:]
            if fresh and (finished or drawn):
                outcomes.append(AgencyClosed(_closed_reason(agency, drawn)))
                continue
            plan.add(agency, position, fresh, lines[skip:])
            position += len(fresh)
            plan.positions[agency] = position
            outcomes.append(Stored(len(fresh), position))
        return outcomes

    def _replay_mismatch(self, plan, agency, resent, start: int, stored_up_to: int):
        """The first resent bet that differs from what its position holds, if any. Only a
        batch that overlaps stored positions pays for this query."""
        held = {}
        if start < stored_up_to:
            held = {
                row[0]: row[1:]
                for row in self._conn.execute(
                    "SELECT seq, first_name, last_name, document, birthdate, number FROM bets"
                    " WHERE agency = ? AND seq BETWEEN ? AND ?",
                    (agency, start, min(start + len(resent), stored_up_to) - 1),
                )
            }
        for i, bet in enumerate(resent):
            seq = start + i
            fields = held.get(seq) or plan.planned(agency, seq)
            mine = (
                bet.first_name,
                bet.last_name,
                bet.document,
                bet.birthdate.isoformat(),
                bet.number,
            )
            if fields != mine:
                return ReplayMismatch(i + 1, seq)
        return None

    def _append(self, plan: "_Plan", csv_length: int) -> None:
        data = b"".join(plan.lines)
        self._fault("before_csv_write")
        self._write_csv(csv_length, data)
        self._fault("csv_written")
        self._conn.executemany(
            "INSERT INTO bets (agency, seq, first_name, last_name, document, birthdate,"
            " number, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            plan.rows,
        )
        self._conn.execute("UPDATE csv_state SET length = ?", (csv_length + len(data),))

    def _record_ends(self, work: "Round") -> tuple[list[Finished], bool]:
        if not work.ends:
            return [], False
        newly = []
        for agency in work.ends:
            cur = self._conn.execute(
                f"INSERT OR IGNORE INTO agencies (agency, finished_at) VALUES (?, {_NOW})",
                (agency,),
            )
            newly.append(cur.rowcount == 1)
        drew, count = self._draw_if_complete(work.agencies, work.winning_number)
        # Only the END that completed the lottery ran the draw.
        ends = [Finished(n, drew and i == len(newly) - 1, count) for i, n in enumerate(newly)]
        return ends, drew

    def _flush_csv(self) -> None:
        # Made durable after the lock is released: writers overlap their flushes (the kernel
        # coalesces them) and the lock is held for one fsync per round, SQLite's. Nothing is
        # acknowledged before this returns; a crash before it leaves bets.csv shorter than
        # recorded, which recovery rebuilds from the database.
        try:
            os.fdatasync(self._csv_fd)
        except OSError as exc:
            raise StorageError(f"could not flush bets.csv: {exc}") from exc

    @_storage_errors
    def draw_if_complete(self, agencies: int, winning_number: int) -> bool:
        """Record the draw if every agency 1..agencies finished and it is not recorded yet."""
        with self._writing():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                drew, _ = self._draw_if_complete(agencies, winning_number)
                self._conn.execute("COMMIT")
            except BaseException:
                self._abort(None)
                raise
        return drew

    def record_delivery(self, agency: int) -> None:
        """Note that the agency was sent its whole winners list (once per agency and process).

        Touches no CSV, so it takes SQLite's own lock only, and commits with synchronous=NORMAL:
        in WAL mode the record becomes durable with the next full commit. Losing it in a crash
        only makes the lottery read as "drawn, not every agency told" instead of complete
        (stats, archive notes); no decision depends on it.
        """
        if agency in self._delivered:
            return
        conn = self._conn
        try:
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(
                f"INSERT OR IGNORE INTO deliveries (agency, delivered_at) VALUES (?, {_NOW})",
                (agency,),
            )
        except sqlite3.Error as exc:
            raise StorageError(f"could not record the delivery: {exc}") from exc
        finally:
            conn.execute("PRAGMA synchronous = FULL")
        self._delivered.add(agency)

    def announce_draw(self) -> None:
        """Log the draw (`action: sorteo`) once per lottery: the mark in the database
        survives restarts, so a draw committed by a server that died before logging it is
        logged by the next one, and two workers never both log it."""
        with self._writing():
            try:
                row = self._conn.execute("SELECT announced_at FROM draw").fetchone()
                if row is None or row[0] is not None:
                    return
                log.info(event("sorteo", "success"))
                self._conn.execute(f"UPDATE draw SET announced_at = {_NOW}")
            except sqlite3.Error as exc:
                raise StorageError(f"could not mark the draw as announced: {exc}") from exc

    def _draw_if_complete(self, agencies: int, winning_number: int) -> tuple[bool, int]:
        if agencies < 1:  # a lottery of no agency has nobody to finish it: never drawn
            return False, 0
        count = self._conn.execute(
            "SELECT COUNT(*) FROM agencies WHERE agency BETWEEN 1 AND ?", (agencies,)
        ).fetchone()[0]
        if count < agencies:
            return False, count
        cur = self._conn.execute(
            f"INSERT OR IGNORE INTO draw (id, drawn_at, winning_number) VALUES (1, {_NOW}, ?)",
            (winning_number,),
        )
        return cur.rowcount == 1, count

    def _write_csv(self, offset: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self._csv_fd, view, offset)
            view, offset = view[written:], offset + written
        # A crashed earlier write may have left bytes past the recorded length.
        if os.fstat(self._csv_fd).st_size > offset:
            os.ftruncate(self._csv_fd, offset)

    def _abort(self, csv_length: int | None) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
        if csv_length is not None:
            # Best effort: recovery cuts the same tail at the next start if this fails.
            with contextlib.suppress(OSError):
                os.ftruncate(self._csv_fd, csv_length)

    # --- queries --------------------------------------------------------------------

    @_storage_errors
    def position(self, agency: int) -> int:
        """How many of the agency's bets are stored (its next seq)."""
        # MAX over the UNIQUE (agency, seq) index: O(log n), positions have no gaps.
        row = self._conn.execute("SELECT MAX(seq) FROM bets WHERE agency = ?", (agency,)).fetchone()
        return 0 if row[0] is None else row[0] + 1

    @_storage_errors
    def finished_agencies(self) -> set[int]:
        """The agencies that sent END."""
        return {r[0] for r in self._conn.execute("SELECT agency FROM agencies")}

    @_storage_errors
    def draw(self) -> Draw | None:
        """The lottery's draw, if it happened."""
        row = self._conn.execute(
            "SELECT drawn_at, winning_number, announced_at FROM draw"
        ).fetchone()
        return None if row is None else Draw(*row)

    @_storage_errors
    def winners(self, agency: int) -> list[str]:
        """The documents of the agency's winning bets in stream order (empty before the draw)."""
        return [
            r[0]
            for r in self._conn.execute(
                WINNERS_SQL,
                (agency,),
            )
        ]
