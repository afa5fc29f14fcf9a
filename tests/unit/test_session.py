"""What a connection's session answers, over a real store and shared state (no sockets)."""

import errno
import multiprocessing
from multiprocessing.managers import SyncManager

import pytest

from protocol import FAIL, SUCCESS, WAIT, Auth, Bets, End, Hello, Ping, Response, Resume, Winners
from scripts.lab.sample import make_bets, mp_lock
from server.config import CONFIG_PATH, load_config
from server.conn_state import ConnState
from server.session import HELD, Session, commit_writes
from server.state import LotteryState
from storage import BetStore, recover


@pytest.fixture
def world(tmp_path):
    ctx = multiprocessing.get_context("fork")
    manager = SyncManager(ctx=ctx)
    manager.start()
    recover(tmp_path)
    failing = {"point": None}

    def fault(point):
        if point == failing["point"]:
            failing["point"] = None
            raise OSError(errno.ENOSPC, "No space left on device")

    store = BetStore(tmp_path, mp_lock(), fault=fault)
    config = load_config(
        CONFIG_PATH, environ={"AGENCIES": "2", "STORAGE_DIR": str(tmp_path), "WINNERS_WAIT_S": "60"}
    )
    state = LotteryState(manager, ctx, set(), False)
    yield config, store, state, failing
    store.close()
    manager.shutdown()


def session(world):
    config, store, state, _ = world
    return Session(config, store, state, None, ConnState(conn_id=1, peer="test"))


def committed(world, s: Session, write):
    """A planned write through the round commit production uses, then its answers."""
    config, store, state, _ = world
    if isinstance(write, Response):  # refused while planning
        return [write]
    result = commit_writes([(write, s.agency)], config, store, state) if write.pending else None
    return s.answers(write, result)


def end(world, s: Session, agency: int) -> Response:
    return committed(world, s, s.plan_end(End(agency)))[0]


def bets(world, s: Session, *requests: Bets) -> list[Response]:
    return committed(world, s, s.plan_bets(list(requests)))


def test_ping_needs_no_agency_and_binds_none(world):
    s = session(world)
    assert s.handle(Ping()).message == "PONG" and s.agency is None


def test_the_first_agency_message_binds_the_session(world):
    s = session(world)
    assert s.handle(Resume(2)).message == "0"
    refused = s.handle(Resume(1))
    assert refused.result == FAIL and "speaks for agency 2" in refused.message


def test_winners_before_the_draw_is_held_then_answered_after_the_last_end(world):
    first, second = session(world), session(world)
    bets(world, first, Bets(tuple(make_bets(1, 0, 3, winners_every=2)), 0))
    assert end(world, first, 1).result == SUCCESS
    assert first.handle(Winners(1)) is HELD and first.held_since is not None
    assert end(world, second, 2).message == "agency 2 finished"
    answer = first.handle(Winners(1))
    assert (answer.result, answer.message) == (SUCCESS, "2")
    assert first.held_since is None


def test_an_end_the_disk_cannot_record_is_answered_wait_and_a_retry_succeeds(world):
    *_, failing = world
    s = session(world)
    failing["point"] = "before_draw_commit"
    s2 = session(world)
    assert end(world, s2, 2).result == SUCCESS
    answer = end(world, s, 1)
    assert answer.result == WAIT and "send it again later" in answer.message
    assert end(world, s, 1).result == SUCCESS


def test_a_batch_the_disk_cannot_store_is_answered_wait(world):
    *_, failing = world
    failing["point"] = "csv_written"
    s = session(world)
    answer = bets(world, s, Bets(tuple(make_bets(1, 0, 2)), 0))[0]
    assert answer.result == WAIT
    assert s.handle(Resume(1)).message == "0"


def test_in_open_mode_hello_and_auth_answer_open_and_auth_binds(world):
    s = session(world)
    assert s.handle(Hello(2)).message == "open" and s.agency is None
    assert s.handle(Auth(2, "anything")).message == "open" and s.agency == 2
    assert s.handle(Auth(7, "x")).message == "this connection speaks for agency 2"
    fresh = session(world)
    assert fresh.handle(Auth(9, "x")).message == "agency 9 is not in 1..2"
