"""Which agencies finished and whether the draw happened, shared by every process.

The Manager holds the live copy (read on every batch), storage the durable one (so a
restarted server continues the same lottery). Both change together under one lock.
"""

from storage import BetStore, Finished


class LotteryState:
    """Shared, lock-guarded lottery progress; built in the acceptor, passed to each worker."""

    def __init__(self, manager, ctx, finished: set[int], drawn: bool) -> None:
        self._shared = manager.dict(finished=sorted(finished), drawn=drawn)
        self._lock = ctx.Lock()
        self._drawn = ctx.Event()
        if drawn:
            self._drawn.set()

    @property
    def drawn(self) -> bool:
        return self._drawn.is_set()

    def finished(self) -> set[int]:
        """The agencies that sent END."""
        return set(self._shared["finished"])

    def record_end(self, store: BetStore, agency: int, agencies: int, number: int) -> Finished:
        """Record an END durably and in the shared copy; runs the draw when it is the last."""
        with self._lock:
            result = store.finish(agency, agencies, number)
            finished = set(self._shared["finished"]) | {agency}
            self._shared["finished"] = sorted(finished)
            if result.drew or (not self.drawn and store.draw() is not None):
                self._shared["drawn"] = True
                self._drawn.set()
        return result

    def mark_drawn(self) -> None:
        """The draw was recorded outside record_end (at start-up)."""
        with self._lock:
            self._shared["drawn"] = True
            self._drawn.set()
