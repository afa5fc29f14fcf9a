"""A worker's turn (server.connection.serve_turns) over real socketpairs, with a scripted
commit: rounds, one shared commit per round, answers in order, and how each part ends."""

import socket

import pytest

from protocol import TLS_ON_PLAINTEXT, Bets, End, Ping, Winners, decode_response, encode
from scripts.lab.sample import make_bets
from server.config import CONFIG_PATH, load_config
from server.conn_state import ConnState, TurnEnd
from server.connection import serve_turns
from server.handoff import Ticket
from server.session import Session, commit_writes
from storage import Committed, Finished, StorageError, Stored

CONFIG = load_config(CONFIG_PATH, environ={"AGENCIES": "3", "WINNERS_WAIT_S": "60"})


class ScriptedStore:
    """Records each round; stores every batch whole (or raises the error it is given)."""

    def __init__(self) -> None:
        self.rounds = []
        self.deliveries = []  # one list per turn that sent whole winners lists
        self.error: StorageError | None = None

    def commit(self, work) -> Committed:
        self.rounds.append(work)
        if self.error is not None:
            raise self.error
        bets = [
            [Stored(len(b), (seq or 0) + len(b)) for b, seq in batches]
            for _, batches in work.groups
        ]
        return Committed(bets, [Finished(True, False, 1) for _ in work.ends])


class Undrawn:
    """The shared lottery state of a lottery not drawn yet."""

    drawn = False

    def finished(self) -> set[int]:
        return set()

    def record_ends(self, agencies, drawn) -> None:
        pass


@pytest.fixture
def store():
    return ScriptedStore()


@pytest.fixture
def pairs():
    made = []

    def make(n):
        for _ in range(n):
            made.append(socket.socketpair())
        return made[-n:]

    yield make
    for a, b in made:
        a.close()
        b.close()


def turn(store, lent_pairs, sent, buffers=None):
    """Each peer sends its bytes, then one turn serves every connection."""
    state = Undrawn()
    for (_, peer), data in zip(lent_pairs, sent, strict=True):
        if data:
            peer.sendall(data)
    lent = []
    for i, (mine, _) in enumerate(lent_pairs):
        conn = ConnState(conn_id=i + 1, peer=f"peer{i}", buffer=(buffers or {}).get(i, b""))
        lent.append((mine, Ticket(state=conn, lent_with=len(lent_pairs))))
    return serve_turns(
        lent,
        lambda ticket: Session(CONFIG, store, state, None, ticket.state),
        lambda writes: commit_writes(writes, CONFIG, store, state),
        store.deliveries.append,
    )


def answers(peer, count):
    peer.settimeout(5)
    data = b""
    while data.count(b"\n") < count:
        data += peer.recv(65536)
    return [decode_response(line) for line in data.split(b"\n")[:-1]]


def bets_line(agency, start, count):
    return encode(Bets(tuple(make_bets(agency, start, count)), start))


def test_the_batches_of_two_connections_share_one_commit(store, pairs):
    one, two = pairs(2)
    outcomes = turn(store, [one, two], [bets_line(1, 0, 3), bets_line(2, 0, 4)])
    assert len(store.rounds) == 1
    assert [agency for agency, _ in store.rounds[0].groups] == [1, 2]
    assert [a.message for a in answers(one[1], 1) + answers(two[1], 1)] == ["3", "4"]
    assert [(o.end, o.state.agency, o.active) for o in outcomes] == [
        (TurnEnd.PARK, 1, True),
        (TurnEnd.PARK, 2, True),
    ]


def test_answers_keep_the_order_of_the_messages_across_rounds(store, pairs):
    (one,) = pairs(1)
    sent = (
        encode(Ping()) + bets_line(1, 0, 2) + bets_line(1, 2, 2) + encode(End(1)) + encode(Ping())
    )
    turn(store, [one], [sent])
    got = [a.message for a in answers(one[1], 5)]
    assert got == ["PONG", "2", "2", "agency 1 finished", "PONG"]
    # The BETS run is one round, the END the next: a batch is stored before END counts it.
    assert [(len(r.groups), list(r.ends)) for r in store.rounds] == [(1, []), (0, [1])]


def test_a_partial_message_stays_in_the_outcome_for_the_next_turn(store, pairs):
    (one,) = pairs(1)
    line = bets_line(1, 0, 2)
    (outcome,) = turn(store, [one], [line[:10]])
    assert outcome.end is TurnEnd.PARK and outcome.state.buffer == line[:10]
    assert not outcome.active and store.rounds == []
    (outcome,) = turn(store, [one], [line[10:]], buffers={0: outcome.state.buffer})
    assert outcome.state.buffer == b"" and answers(one[1], 1)[0].message == "2"


def test_a_storage_error_answers_each_batch_wait(store, pairs):
    (one,) = pairs(1)
    store.error = StorageError("could not store: disk full")
    turn(store, [one], [bets_line(1, 0, 2) + bets_line(1, 2, 2)])
    got = answers(one[1], 2)
    assert [a.result for a in got] == ["wait", "wait"]
    assert "nothing of this batch was stored" in got[0].message


def test_a_winners_before_the_draw_is_held_and_kept_for_a_later_turn(store, pairs):
    (one,) = pairs(1)
    (outcome,) = turn(store, [one], [encode(Winners(2))])
    assert outcome.end is TurnEnd.PARK and outcome.state.held_since is not None
    assert outcome.state.buffer == encode(Winners(2)) and outcome.state.agency == 2


def test_a_peer_that_closed_ends_its_part_with_close(store, pairs):
    (one,) = pairs(1)
    one[1].shutdown(socket.SHUT_WR)
    (outcome,) = turn(store, [one], [b""])
    assert outcome.end is TurnEnd.CLOSE and outcome.state.buffer == b""


def test_an_oversized_message_is_answered_after_the_earlier_ones_then_closed(store, pairs):
    (one,) = pairs(1)
    (outcome,) = turn(store, [one], [encode(Ping()) + b"X" * 9000])
    got = answers(one[1], 2)
    assert got[0].message == "PONG" and got[1].result == "fail"
    assert "8192" in got[1].message and outcome.end is TurnEnd.CLOSE


@pytest.mark.parametrize(
    "hello", [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"\x16\x03\x01\n\x00rest"]
)
def test_a_tls_hello_on_the_plain_port_gets_one_clear_line_then_close(store, pairs, hello):
    (one,) = pairs(1)
    (outcome,) = turn(store, [one], [hello])  # a partial record, and one holding a \n
    (got,) = answers(one[1], 1)
    assert (got.result, got.message) == ("fail", TLS_ON_PLAINTEXT)
    assert outcome.end is TurnEnd.CLOSE and store.deliveries == []
