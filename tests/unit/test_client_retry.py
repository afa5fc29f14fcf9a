"""The client's retry budget: backoff above the server's hint, bounded from the last progress."""

import pytest

from client.retry import BACKOFF_MAX_S, GiveUp, RetryBudget


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pauses_grow_exponentially_up_to_the_cap_with_full_jitter():
    budget = RetryBudget(1000, clock=Clock(), jitter=lambda: 1.0)
    pauses = [budget.pause() for _ in range(8)]
    assert pauses[:3] == [0.05, 0.1, 0.2]
    assert pauses[-1] == BACKOFF_MAX_S
    low = RetryBudget(1000, clock=Clock(), jitter=lambda: 0.0)
    assert low.pause() == 0.0


def test_the_server_hint_is_a_floor_under_the_jitter():
    budget = RetryBudget(1000, clock=Clock(), jitter=lambda: 0.5)
    assert budget.pause(hint_s=1.0) == pytest.approx(1.025)


def test_gives_up_once_max_seconds_passed_since_the_first_failure():
    clock = Clock()
    budget = RetryBudget(3, clock=clock, jitter=lambda: 1.0)
    budget.pause()
    clock.now += 2.9
    assert budget.pause(hint_s=5) == pytest.approx(0.1)  # never past the budget
    clock.now += 0.1
    with pytest.raises(GiveUp, match="gave up after 3s"):
        budget.pause()


def test_progress_restores_the_budget_and_the_first_delay():
    clock = Clock()
    budget = RetryBudget(3, clock=clock, jitter=lambda: 1.0)
    for _ in range(4):
        budget.pause()
    clock.now += 2.5
    budget.progress()
    clock.now += 2.5
    assert budget.pause() == 0.05
