"""Which lottery a server start serves: the stored one, continued under the rules it was started
for, or archived under previous/<time>/ so that a new one begins (one rule, decided in the
server's main process before any fork: open_lottery)."""

import contextlib
import datetime
import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock

from common.logs import event
from storage.database import SQL_NOW, connect
from storage.outcomes import StorageError
from storage.paths import StoragePaths
from storage.recovery import recover
from storage.store import BetStore
from storage.transaction import translated

log = logging.getLogger(__name__)

# Everything one lottery's storage consists of (the lock file stays: see filelock's docs).
# Litestream keeps its local state for bets.db in .bets.db-litestream: it goes with the lottery.
STORAGE_FILES = ("bets.csv", "bets.db", "bets.db-wal", "bets.db-shm", ".bets.db-litestream")
NOTE = "lottery.json"  # what an archived lottery was, beside its files


class LotteryMismatch(Exception):
    """The stored lottery is not drawn and was started for other rules: the server must not
    continue it under these, nor throw it away on its own (exit 2, the message says how)."""


@dataclass(frozen=True, kw_only=True)
class Rules:
    """What a deployment starts a lottery for."""

    lottery_id: str  # '' = the deployment names none
    agencies: int
    winning_number: int


@dataclass(frozen=True, kw_only=True)
class StoredLottery:
    """The lottery in a storage folder: what it was started for and how far it got."""

    lottery_id: str | None  # None: unknown (bets.db was rebuilt from bets.csv)
    agencies: int | None  # None: begun by a version that did not record it
    winning_number: int | None
    started_at: str
    bets: int
    finished: frozenset[int]
    drawn_at: str | None
    told: int  # agencies sent their whole winners list

    @property
    def drawn(self) -> bool:
        return self.drawn_at is not None

    @property
    def complete(self) -> bool:
        """Drawn, and every one of its own agencies was sent its winners."""
        return self.drawn and self.agencies is not None and self.told >= self.agencies

    @property
    def empty(self) -> bool:
        """Nothing happened in it yet: no bet, no END, no draw."""
        return not (self.bets or self.finished or self.drawn)

    def state(self) -> str:
        if self.complete:
            return "complete"
        if self.drawn:
            return "drawn, not every agency told"
        return "not drawn"


@dataclass(frozen=True)
class Continue:
    adopt: bool = False  # record the configuration's rules (the stored ones are unknown)


@dataclass(frozen=True)
class Begin:
    reason: str
    archive: bool  # False: nothing worth keeping (no lottery stored, or an empty one)


def decide(stored: StoredLottery | None, wanted: Rules) -> Continue | Begin:
    """The start-up rule; raises LotteryMismatch when only a person may decide."""
    if stored is None:
        return Begin("no lottery stored", archive=False)
    if stored.lottery_id is None:
        # bets.db was lost and rebuilt from bets.csv: its record went with it, and the bets
        # on this disk are the deployment's own (the clients resend from their positions).
        return Continue(adopt=True)
    if wanted.lottery_id and wanted.lottery_id != stored.lottery_id:
        return Begin("another deployment", archive=not stored.empty)
    if stored.agencies is None or stored.winning_number is None:
        return Continue(adopt=True)
    changed = [
        f"{name} changed"
        for name, was, now in (
            ("agencies", stored.agencies, wanted.agencies),
            ("winning number", stored.winning_number, wanted.winning_number),
        )
        if was != now
    ]
    if not changed:
        return Continue()
    if stored.empty or stored.drawn:
        # Never continued under other rules: a drawn one is over, an empty one holds nothing.
        return Begin(" and ".join(changed), archive=not stored.empty)
    named = f" {stored.lottery_id}" if stored.lottery_id else ""
    raise LotteryMismatch(
        f"the stored lottery{named} was started for AGENCIES={stored.agencies} "
        f"WINNING_NUMBER={stored.winning_number} and is not drawn yet, but the configuration "
        f"says AGENCIES={wanted.agencies} WINNING_NUMBER={wanted.winning_number}: start with "
        f"AGENCIES={stored.agencies} WINNING_NUMBER={stored.winning_number} to continue it, or "
        "stop the server and run `python -m storage new-lottery` to archive it and begin anew"
    )


@dataclass(frozen=True, kw_only=True)
class Lottery:
    """The lottery a server serves, as it stands at start."""

    rules: Rules
    started_at: str
    finished: frozenset[int]
    drawn: bool


def open_lottery(directory: str | Path, wanted: Rules, lock) -> Lottery:
    """Recover the files, apply the start-up rule, record what a new lottery is started for,
    run a draw that a crash left pending and log it once. Raises LotteryMismatch,
    StorageError, RecoveryError or MigrationError. Opens and closes its own BetStore, so
    nothing of storage is inherited by the processes forked afterwards."""
    recover(directory)
    stored = read_lottery(directory)
    decision = decide(stored, wanted)
    if isinstance(decision, Begin):
        if decision.archive:
            previous = archive(directory, decision.reason)
            log.info(
                event(
                    "new_lottery",
                    "success",
                    previous=previous,
                    reason=decision.reason,
                    was=stored.state(),
                )
            )
            recover(directory)
        _record(directory, wanted)
    elif decision.adopt:
        _record(directory, wanted)
    store = BetStore(directory, lock)
    try:
        store.draw_if_complete(wanted.agencies, wanted.winning_number)
        store.announce_draw()
    finally:
        store.close()
    now = read_lottery(directory)
    log.info(
        event(
            "lottery",
            "success",
            lottery_id=now.lottery_id or "(none)",
            agencies=now.agencies,
            winning_number=now.winning_number,
            state="continued" if isinstance(decision, Continue) else "new",
            bets=now.bets,
            finished=len(now.finished),
            drawn=now.drawn,
        )
    )
    return Lottery(
        rules=Rules(
            lottery_id=now.lottery_id, agencies=now.agencies, winning_number=now.winning_number
        ),
        started_at=now.started_at,
        finished=now.finished,
        drawn=now.drawn,
    )


def _record(directory: str | Path, rules: Rules) -> None:
    """Note what the lottery in directory is started for (replacing what was noted)."""
    paths = StoragePaths(Path(directory))
    # Before any fork nobody else writes: the FileLock keeps out `storage check` and the like.
    with (
        translated("record the lottery"),
        FileLock(paths.lock, preserve_lock_file=True),
        contextlib.closing(connect(paths.db)) as conn,
    ):
        conn.execute(
            "INSERT INTO lottery (id, lottery_id, agencies, winning_number, started_at)"
            f" VALUES (1, ?, ?, ?, {SQL_NOW}) ON CONFLICT (id) DO UPDATE SET"
            " lottery_id = excluded.lottery_id, agencies = excluded.agencies,"
            " winning_number = excluded.winning_number, started_at = excluded.started_at",
            (rules.lottery_id, rules.agencies, rules.winning_number),
        )


def read_lottery(directory: str | Path) -> StoredLottery | None:
    """The stored lottery, read-only (None when there is none). A database archived by a
    version that did not record the lottery reads as one with unknown rules."""
    paths = StoragePaths(Path(directory))
    if not paths.db.exists():
        return None
    with (
        translated(f"read the lottery in {paths.db}"),
        contextlib.closing(connect(paths.db, read_only=True)) as conn,
    ):
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        row = None
        if "lottery" in tables:
            row = conn.execute(
                "SELECT lottery_id, agencies, winning_number, started_at FROM lottery"
            ).fetchone()
        bets = conn.execute("SELECT COUNT(*) FROM bets").fetchone()[0]
        finished = frozenset(r[0] for r in conn.execute("SELECT agency FROM agencies"))
        draw = conn.execute("SELECT drawn_at, winning_number FROM draw").fetchone()
        told = 0
        if "deliveries" in tables:
            told = conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
    if row is None:  # an archive from before 0006, or a database rebuilt from bets.csv
        if not (bets or finished or draw):
            return None
        row = ("" if "lottery" not in tables else None, None, None if draw is None else draw[1], "")
    lottery_id, agencies, winning_number, started_at = row
    return StoredLottery(
        lottery_id=lottery_id,
        agencies=agencies,
        winning_number=winning_number,
        started_at=started_at,
        bets=bets,
        finished=finished,
        drawn_at=None if draw is None else draw[0],
        told=told,
    )


def archive(directory: str | Path, reason: str = "by hand") -> Path | None:
    """Move the lottery's files to previous/<time>/ with a note of what it was (None if there
    were none). Only with the server stopped: a running one would go on writing to them."""
    paths = StoragePaths(Path(directory))
    try:
        stored = read_lottery(directory)
    except StorageError as exc:  # a damaged database is archived all the same, unread
        stored, unreadable = None, str(exc)
    else:
        unreadable = None
    with FileLock(paths.lock, preserve_lock_file=True):
        present = [paths.directory / n for n in STORAGE_FILES if (paths.directory / n).exists()]
        if not present:
            return None
        now = datetime.datetime.now(datetime.UTC)
        target = paths.directory / "previous" / now.strftime("%Y%m%d-%H%M%S-%f")
        target.mkdir(parents=True)
        for path in present:
            shutil.move(path, target / path.name)
        note = {"archived_at": now.isoformat(timespec="milliseconds"), "reason": reason}
        if stored is not None:
            note |= asdict(stored) | {"finished": len(stored.finished), "state": stored.state()}
        if unreadable:
            note["unreadable"] = unreadable
        (target / NOTE).write_text(json.dumps(note, indent=2) + "\n", encoding="utf-8")
    return target
