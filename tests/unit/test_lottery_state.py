"""The shared lottery state: which agencies finished, and the draw Event."""

import multiprocessing
from multiprocessing.managers import SyncManager

import pytest

from server.state import LotteryState


@pytest.fixture
def ctx():
    return multiprocessing.get_context("fork")


@pytest.fixture
def manager(ctx):
    m = SyncManager(ctx=ctx)
    m.start()
    yield m
    m.shutdown()


def test_starts_from_what_storage_holds(manager, ctx):
    state = LotteryState(manager, ctx, {2, 3}, drawn=True)
    assert state.finished() == {2, 3} and state.drawn


def test_ends_are_mirrored_and_a_stored_draw_sets_the_event(manager, ctx):
    state = LotteryState(manager, ctx, set(), drawn=False)
    state.record_ends([1], drawn=False)
    assert state.finished() == {1} and not state.drawn
    state.record_ends([2, 3], drawn=True)
    assert state.finished() == {1, 2, 3} and state.drawn


def test_a_forked_process_sees_the_draw(manager, ctx):
    state = LotteryState(manager, ctx, set(), drawn=False)
    seen = ctx.Queue()
    child = ctx.Process(target=lambda: seen.put(state._drawn.wait(10)))
    child.start()
    state.record_ends([1], drawn=True)
    assert seen.get(timeout=10) is True
    child.join(10)
