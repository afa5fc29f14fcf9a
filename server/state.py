"""Which agencies finished and whether the draw happened, shared by every process.

The Manager holds the live copy (read on every batch), storage the durable one (so a
restarted server continues the same lottery). Both change together under one lock.
"""

import time
from collections.abc import Callable

from storage import BetStore, Finished


class LotteryState:
    """Shared, lock-guarded lottery progress; built in the acceptor, passed to each child."""

    def __init__(self, manager, ctx, finished: set[int], drawn: bool) -> None:
        self._shared = manager.dict(finished=sorted(finished), drawn=drawn)
        self._owners = manager.dict()  # agency -> pid of the child serving its connection
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

    def take_over(self, agency: int, pid: int) -> int | None:
        """Make pid the agency's connection; return the pid of the one it replaces, if any."""
        with self._lock:
            previous = self._owners.get(agency)
            self._owners[agency] = pid
        return previous if previous != pid else None

    def release(self, pid: int) -> None:
        """Forget the connection served by pid (it ended)."""
        with self._lock:
            for agency, owner in list(self._owners.items()):
                if owner == pid:
                    del self._owners[agency]

    def mark_drawn(self) -> None:
        """The draw was recorded outside record_end (at start-up)."""
        with self._lock:
            self._shared["drawn"] = True
            self._drawn.set()

    def wait_for_draw(self, timeout: float, stop: Callable[[], bool]) -> bool:
        """Wait until the draw happened (True), timeout passed or stop() said so (False)."""
        deadline = time.monotonic() + timeout
        while not stop():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            # Short slices: a signal handler cannot interrupt Event.wait (PEP 475).
            if self._drawn.wait(min(remaining, 0.02)):
                return True
        return self.drawn
