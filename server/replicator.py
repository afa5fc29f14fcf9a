"""Litestream as the server's child: started after recovery with the configuration storage
writes, restarted when it dies (paced), given a last sync and stopped at shutdown. The
acceptor calls poll() on its tick; nothing here blocks the loop but start and stop."""

import contextlib
import logging
import os
import signal
import subprocess
import time

from common.logs import event
from common.signals import PR_SET_PDEATHSIG
from storage.replica import (
    Replica,
    ReplicaUnconfirmed,
    confirm,
    litestream_binary,
    restore,
    write_config,
)

log = logging.getLogger(__name__)

RESTART_PAUSE_S = 1.0
STOP_TIMEOUT_S = 5.0
READY_TIMEOUT_S = 10.0  # for its control socket to answer after a start


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: a SIGKILLed server takes Litestream along.
    import ctypes

    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Replicator:
    def __init__(self, replica: Replica, timeout_s: float, log_path) -> None:
        self.replica = replica
        self.timeout_s = timeout_s
        self._log_path = log_path  # Litestream's own output, beside the control socket
        self.process: subprocess.Popen | None = None
        self._restart_at: float | None = None
        self.restarts = 0

    def start(self) -> None:
        """Write the configuration and start `litestream replicate`; wait until its control
        socket answers (a barrier then works at once)."""
        binary = litestream_binary()
        if binary is None:
            raise OSError("REPLICA_URL is set but the litestream command is not installed")
        write_config(self.replica)
        self.replica.control.unlink(missing_ok=True)
        output = open(self._log_path, "ab")
        try:
            self.process = subprocess.Popen(
                [binary, "replicate", "-config", str(self.replica.config)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # the acceptor has no threads at this point
                start_new_session=True,  # Ctrl-C to the group: the acceptor stops it, in order
                # One core for Go: on a small machine its parallel work would compete with
                # the workers for the cores (measured: make bench 1.20 -> 1.05 x). An
                # operator's GOMAXPROCS wins.
                env={"GOMAXPROCS": "1", **os.environ},
            )
        finally:
            output.close()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.replica.control.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise OSError(f"litestream did not start (see {self._log_path})")
            time.sleep(0.01)
        log.info(event("replica", "success", url=self.replica.url, pid=self.process.pid))

    def poll(self, now: float) -> None:
        """On the acceptor's tick: a Litestream that exited is started again, at most once a
        second (ENDs wait meanwhile)."""
        if self.process is None or self.process.poll() is None:
            if self._restart_at is not None and now >= self._restart_at:
                self._restart_at = None
                try:
                    self.start()
                    self.restarts += 1
                except OSError as exc:
                    log.error(event("replica", "fail", error=f"cannot restart litestream: {exc}"))
                    self._restart_at = now + RESTART_PAUSE_S
            return
        code = self.process.returncode
        self.process = None
        log.error(event("replica", "fail", error=f"litestream exited (code {code}); restarting "
                        f"in {RESTART_PAUSE_S:.0f}s; ENDs wait until it is back"))  # fmt: skip
        self._restart_at = now + RESTART_PAUSE_S

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """A last sync (so the replica holds every commit), then SIGTERM, then SIGKILL."""
        if not self.running:
            return
        try:
            confirm(self.replica, self.timeout_s)
            log.info(event("replica", "success", resource="final sync"))
        except ReplicaUnconfirmed as exc:
            log.warning(event("replica", "fail", resource="final sync", error=exc))
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(OSError):
            self.replica.control.unlink()
        log.info(event("shutdown", "success", resource="replica"))


def restore_lost(directory: str, replica: Replica) -> None:
    """At start, before recovery: a missing bets.db comes back from the replica (logged)."""
    restored = restore(directory, replica)
    if restored is None:
        return
    log.info(event("restore", "success", **{"from": restored.url}, bets=restored.bets))
    if restored.moved_csv is not None:
        log.warning(event("restore", "success", warning=f"the bets.csv that was there is kept "
                          f"as {restored.moved_csv}; recovery rebuilds bets.csv from the "
                          "restored database"))  # fmt: skip
