"""Which agencies finished and whether the draw happened, shared by every process.

The Manager holds the live copy (read on every batch), storage the durable one (so a
restarted server continues the same lottery). Both change together under one lock.
"""

from storage import BetStore, Finished


class LotteryState:
    """Shared, lock-guarded lottery progress; built in the acceptor, passed to each worker."""

    def __init__(self, manager, ctx, finished: set[int], drawn: bool) -> None:
        # One key per agency: recording an END is one round trip to the Manager, whatever
        # the number of agencies (a shared list would be copied both ways on each END).
        self._finished = manager.dict(dict.fromkeys(finished, True))
        self._lock = ctx.Lock()
        self._drawn = ctx.Event()
        if drawn:
            self._drawn.set()

    @property
    def drawn(self) -> bool:
        return self._drawn.is_set()

    def finished(self) -> set[int]:
        """The agencies that sent END."""
        return set(self._finished.keys())

    def record_end(self, store: BetStore, agency: int, agencies: int, number: int) -> Finished:
        """Record an END durably and in the shared copy; runs the draw when it is the last."""
        with self._lock:
            result = store.finish(agency, agencies, number)
            self._finished[agency] = True
            if result.drew:
                self._drawn.set()
        return result

    def mark_drawn(self) -> None:
        """The draw was recorded outside record_end (at start-up)."""
        self._drawn.set()
