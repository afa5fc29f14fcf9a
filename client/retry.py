"""How long to pause before trying again, and when to give up. Pure: the clock and the random
source are passed in."""

import random
import time
from collections.abc import Callable

BACKOFF_FIRST_S = 0.05
BACKOFF_MAX_S = 2.0


class GiveUp(Exception):
    """retry.maxSeconds passed since the last progress."""


class RetryBudget:
    """Capped exponential backoff with full jitter, above the server's retry hint, bounded
    in total by max_seconds from the first failure after the last progress.

    Every cause of a retry (no connection, `server busy`, a closed connection, a batch the
    server could not store for now) draws on the same budget; only progress (a batch stored,
    END acknowledged, the draw awaited) restores it.
    """

    def __init__(
        self,
        max_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.max_seconds = max_seconds
        self._clock = clock
        self._jitter = jitter
        self._since: float | None = None
        self._delay = BACKOFF_FIRST_S

    def progress(self) -> None:
        self._since = None
        self._delay = BACKOFF_FIRST_S

    def pause(self, hint_s: float = 0.0) -> float:
        """Seconds to wait before the next try; GiveUp once the budget is spent."""
        now = self._clock()
        if self._since is None:
            self._since = now
        left = self._since + self.max_seconds - now
        if left <= 0:
            raise GiveUp(f"gave up after {self.max_seconds:g}s of retries")
        pause = hint_s + self._jitter() * self._delay
        self._delay = min(self._delay * 2, BACKOFF_MAX_S)
        return min(left, pause)
