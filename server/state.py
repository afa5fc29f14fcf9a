"""Which agencies finished and whether the draw happened, shared by every process.

Storage holds the durable copy (so a restarted server continues the same lottery) and decides;
the Manager mirrors which agencies finished, and an Event says the draw happened (the acceptor
and every worker read it without a round trip).
"""

from storage import Finished


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

    def record_ends(self, agencies: list[int], results: list[Finished]) -> None:
        """Mirror ENDs just committed to storage; the draw Event once one of them drew."""
        if agencies:
            self._finished.update(dict.fromkeys(agencies, True))
        if any(r.drew for r in results):
            self._drawn.set()
