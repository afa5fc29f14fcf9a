"""The acceptor's worker processes: started ahead of need, kept, replaced when one dies."""

import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass, field

from common.logs import event
from server.handoff import channel_pair
from server.worker import run_worker

log = logging.getLogger(__name__)

# A worker that dies soon after starting (say its storage cannot be opened) is not restarted
# in a tight loop.
RESTART_PAUSE_S = 1.0


@dataclass
class Worker:
    index: int
    process: object  # multiprocessing.Process
    channel: object  # the acceptor's end of the channel
    started: float
    conn_ids: set = field(default_factory=set)  # the connections lent to it for this turn
    exitcode: int | None = None  # once reaped


class WorkerPool:
    def __init__(self, ctx, count: int, worker_args: tuple, on_spawn, on_exit) -> None:
        self._ctx = ctx
        self._on_spawn = on_spawn  # called with each new worker's channel (to poll it)
        self._on_exit = on_exit  # called with a dead worker's channel before it is closed
        self._count = count
        self._args = worker_args  # (config, storage_lock, state, keys, meters, barrier, parent_pid)
        self.workers: dict[int, Worker] = {}
        self._restart_at: dict[int, float] = {}

    def start(self, inherited) -> None:
        for index in range(self._count):
            self._spawn(index, inherited)

    def _spawn(self, index: int, inherited) -> None:
        mine, theirs = channel_pair()
        others = [*inherited(), mine, *self.channels()]
        process = self._ctx.Process(
            target=run_worker,
            args=(theirs, index, *self._args, others),
            name=f"worker-{index}",
        )
        process.start()
        theirs.close()
        self.workers[index] = Worker(index, process, mine, time.monotonic())
        self._on_spawn(mine)
        log.debug(event("worker", "success", index=index, pid=process.pid))

    def channels(self) -> list:
        """The acceptor's end of every worker's channel (a process forked later closes them)."""
        return [w.channel for w in self.workers.values()]

    def idle(self) -> list[Worker]:
        return [w for w in self.workers.values() if not w.conn_ids]

    def by_fd(self) -> dict[int, Worker]:
        return {w.channel.fileno(): w for w in self.workers.values()}

    def reap(self) -> list[Worker]:
        """Workers that ended; each is logged and forgotten (restart them with restart())."""
        dead = []
        for index, worker in list(self.workers.items()):
            if worker.process.exitcode is None:
                continue
            log.warning(
                event(
                    "worker",
                    "fail",
                    index=index,
                    pid=worker.process.pid,
                    exitcode=worker.process.exitcode,
                )
            )
            worker.exitcode = worker.process.exitcode
            worker.process.close()
            self._on_exit(worker.channel)
            worker.channel.close()
            del self.workers[index]
            now = time.monotonic()
            self._restart_at[index] = now + (
                RESTART_PAUSE_S if now - worker.started < RESTART_PAUSE_S else 0
            )
            dead.append(worker)
        return dead

    def restart(self, inherited) -> None:
        """Start again the workers whose pause has passed."""
        now = time.monotonic()
        for index, when in list(self._restart_at.items()):
            if when <= now:
                del self._restart_at[index]
                self._spawn(index, inherited)

    def stop(self, grace_s: float) -> int:
        """Close every channel (a worker's cue to exit), wait up to grace_s, kill the rest;
        return how many had to be killed."""
        for worker in self.workers.values():
            worker.channel.close()
        deadline = time.monotonic() + grace_s
        for worker in self.workers.values():
            worker.process.join(max(0, deadline - time.monotonic()))
        killed = 0
        for worker in self.workers.values():
            if worker.process.exitcode is None:
                killed += 1
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.process.pid, signal.SIGKILL)
                worker.process.join()
        self.workers.clear()
        return killed
