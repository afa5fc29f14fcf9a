"""Which agencies finished and whether the draw happened, shared by every process.

Storage holds the durable copy (so a restarted server continues the same lottery) and decides;
the Manager mirrors which agencies finished, and an Event says the draw happened (the acceptor
and every worker read it without a round trip).
"""

import signal
from multiprocessing.managers import SyncManager

from common.signals import die_with_parent, name_process, reset_signals


def start_manager(ctx, parent_pid: int) -> SyncManager:
    """The Manager process that serves the shared state, dying with the acceptor."""
    manager = SyncManager(ctx=ctx)
    manager.start(_manager_init, (parent_pid,))
    return manager


def _manager_init(parent_pid: int) -> None:
    reset_signals()
    name_process("lottery-state")
    # Ctrl-C reaches the whole process group: the Manager must outlive the workers it
    # serves and stop only when the acceptor shuts it down (or dies).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_parent(parent_pid)


class LotteryState:
    """Shared, lock-guarded lottery progress; built in the acceptor, passed to each worker."""

    def __init__(self, manager, ctx, finished: set[int], drawn: bool) -> None:
        # One key per agency: recording an END is one round trip to the Manager, whatever
        # the number of agencies (a shared list would be copied both ways on each END).
        self._finished = manager.dict(dict.fromkeys(finished, True))
        self._drawn = ctx.Event()
        if drawn:
            self._drawn.set()

    @property
    def drawn(self) -> bool:
        return self._drawn.is_set()

    def finished(self) -> set[int]:
        """The agencies that sent END."""
        return set(self._finished.keys())

    def record_ends(self, agencies: list[int], drawn: bool) -> None:
        """Mirror ENDs just committed to storage; the draw Event once storage holds the draw
        (drawn by this round, or by an earlier one whose answer was lost to an error: a
        repeated END then sets it)."""
        if agencies:
            self._finished.update(dict.fromkeys(agencies, True))
        if drawn:
            self._drawn.set()
