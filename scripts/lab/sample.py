"""Small builders and waiters shared by the tests, make chaos and the benches."""

import datetime
import multiprocessing
import time
from collections.abc import Callable

from domain import Bet

FIRST = ["María José", "Juan", "Ana", "José Luis", "Lucía", "Martín"]
LAST = ["Pérez, hijo", "Núñez", 'O"Brien', "Gómez;=%", "Fernández", "Di María"]


def make_bet(agency: int, i: int, number: int | None = None) -> Bet:
    """The i-th bet of an agency, deterministic; names exercise commas, quotes, accents."""
    return Bet(
        agency=agency,
        first_name=FIRST[i % len(FIRST)],
        last_name=LAST[(i // len(FIRST)) % len(LAST)],
        document=str(20_000_000 + agency * 100_000 + i),
        birthdate=datetime.date(1950 + i % 50, 1 + i % 12, 1 + i % 28),
        number=(i * 37) % 10_000 if number is None else number,
    )


def make_bets(agency: int, start: int, count: int, winners_every: int = 0) -> list[Bet]:
    """Bets start..start+count of an agency; every winners_every-th one wins 7574."""
    return [
        make_bet(agency, i, 7574 if winners_every and i % winners_every == 0 else None)
        for i in range(start, start + count)
    ]


def mp_lock():
    """A multiprocessing.Lock from the start method the server uses."""
    return multiprocessing.get_context("fork").Lock()


def wait_for(condition: Callable[[], object], timeout: float = 20, what: str = "condition"):
    """Poll condition until it returns something truthy; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)
