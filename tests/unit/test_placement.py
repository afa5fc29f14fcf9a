"""The acceptor's connection table as a state machine: every legal move keeps its indexes (the
poll set, the held set, the ready queue, the agency owners) in step; illegal moves raise."""

from dataclasses import replace

import pytest

from server.placement import TRANSITIONS, ConnTable, IllegalTransition, Place


class Poller:
    """What the acceptor's epoll would hold: fd -> place it was registered for."""

    def __init__(self) -> None:
        self.watched: dict[int, Place] = {}

    def watch(self, conn) -> None:
        assert conn.fd not in self.watched, "registered twice"
        self.watched[conn.fd] = conn.place

    def unwatch(self, conn) -> None:
        del self.watched[conn.fd]


@pytest.fixture
def poller():
    return Poller()


@pytest.fixture
def table(poller):
    return ConnTable(30, 5, watch=poller.watch, unwatch=poller.unwatch, evictable_after_s=1)


def accepted(table, n: int = 1, now: float = 0):
    fds = range(100 + len(table), 100 + len(table) + n)
    conns = [table.accept(f"sock{fd}", fd, f"peer:{fd}", now) for fd in fds]
    return conns if n > 1 else conns[0]


def lent(table, conn):
    table.queue(conn)
    table.lend(conn)
    return conn


def back(table, conn, now=0.0, active=False, **state):
    return table.give_back(conn, replace(conn.state, **state), active, now)


def consistent(table, poller) -> None:
    """Every index says what each connection's place says."""
    for conn in table.conns.values():
        assert (conn.fd in table.polled) == (conn.place in (Place.PARKED, Place.HELD))
        assert poller.watched.get(conn.fd) == (conn.place if conn.fd in table.polled else None)
        assert (conn.id in table.held) == (conn.place is Place.HELD)
        assert (conn.id in table.ready) == (conn.place is Place.QUEUED)
    assert len(table.polled) == len(poller.watched)


def test_an_accepted_connection_is_parked_and_polled(table, poller):
    conn = accepted(table)
    assert conn.place is Place.PARKED and poller.watched == {conn.fd: Place.PARKED}
    consistent(table, poller)


def test_a_readable_parked_connection_is_queued_in_arrival_order_and_unpolled(table, poller):
    first, second = accepted(table, 2)
    table.queue(second)
    table.queue(first)
    assert list(table.ready) == [second.id, first.id] and table.next_ready() is second
    assert poller.watched == {}
    consistent(table, poller)


def test_lending_takes_it_off_the_ready_queue(table, poller):
    first, second = accepted(table, 2)
    table.queue(first)
    table.queue(second)
    table.lend(first)
    assert first.place is Place.LENT and list(table.ready) == [second.id]
    consistent(table, poller)


def test_a_turn_given_back_parks_it_again_with_its_new_state(table, poller):
    conn = lent(table, accepted(table))
    assert back(table, conn, now=7.0, active=True, buffer=b"BETS=", agency=2) is None
    table.park(conn)
    assert conn.place is Place.PARKED and conn.state.buffer == b"BETS=" and conn.last_active == 7
    assert table.owners == {2: conn.id}
    consistent(table, poller)


def test_a_turn_that_left_a_winners_waiting_holds_it_watched_for_hang_ups_only(table, poller):
    conn = lent(table, accepted(table))
    back(table, conn, held_since=3.0, agency=1)
    table.park(conn)
    assert conn.place is Place.HELD and table.held == {conn.id}
    assert poller.watched == {conn.fd: Place.HELD}
    table.queue(conn)  # the draw happened
    assert table.held == set() and list(table.ready) == [conn.id]
    consistent(table, poller)


def test_a_turn_with_more_to_do_goes_to_the_back_of_the_queue(table, poller):
    first, second = accepted(table, 2)
    lent(table, first)
    table.queue(second)
    back(table, first)
    table.queue(first)
    assert list(table.ready) == [second.id, first.id]
    consistent(table, poller)


@pytest.mark.parametrize("place", [Place.PARKED, Place.HELD, Place.QUEUED, Place.LENT])
def test_a_connection_closes_from_any_place_leaving_no_index_behind(table, poller, place):
    conn = accepted(table)
    if place is not Place.PARKED:
        table.queue(conn)
    if place in (Place.LENT, Place.HELD):
        table.lend(conn)
    if place is Place.HELD:
        back(table, conn, held_since=1.0, agency=4)
        table.park(conn)
    assert conn.place is place
    table.close(conn)
    assert conn.place is Place.CLOSED and len(table) == 0
    assert not (table.polled or table.held or table.ready or table.owners or poller.watched)


ILLEGAL = [
    (frm, to)
    for frm in (Place.PARKED, Place.HELD, Place.QUEUED, Place.LENT, Place.CLOSED)
    for to in Place
    if to not in TRANSITIONS[frm]
]


@pytest.mark.parametrize(("frm", "to"), ILLEGAL, ids=[f"{f.value}-{t.value}" for f, t in ILLEGAL])
def test_every_illegal_move_raises_and_changes_nothing(table, poller, frm, to):
    conn = accepted(table)
    if frm in (Place.QUEUED, Place.LENT, Place.HELD):
        table.queue(conn)
    if frm in (Place.LENT, Place.HELD):
        table.lend(conn)
    if frm is Place.HELD:
        back(table, conn, held_since=1.0)
        table.park(conn)
    if frm is Place.CLOSED:
        table.close(conn)
    assert conn.place is frm
    with pytest.raises(IllegalTransition):
        table._move(conn, to)
    assert conn.place is frm
    consistent(table, poller)


def test_the_public_moves_refuse_what_their_place_does_not_allow(table):
    conn = accepted(table)
    with pytest.raises(IllegalTransition):
        table.lend(conn)  # parked: not queued
    with pytest.raises(IllegalTransition):
        back(table, conn)  # not lent
    with pytest.raises(IllegalTransition):
        table.park(conn)  # already parked


def test_a_second_connection_for_an_agency_takes_over_the_first(table):
    old, new = accepted(table, 2)
    for conn in (old, new):
        lent(table, conn)
    assert back(table, old, agency=3) is None
    assert back(table, new, agency=3) is old
    assert table.owners[3] == new.id and old.state.agency is None
    table.close(old)  # the old one closing does not unbind the newer one
    assert table.owners[3] == new.id


def test_a_connection_taken_over_while_lent_gives_its_turn_back_speaking_for_nobody(table):
    old, new = accepted(table, 2)
    lent(table, old)
    back(table, old, agency=3)
    table.queue(old)
    table.lend(old)
    lent(table, new)
    assert back(table, new, agency=3) is old
    old.doomed = "taken over"
    assert back(table, old, agency=3) is None  # its worker still thinks it speaks for 3
    assert table.owners[3] == new.id and old.state.agency is None


def test_binding_the_same_agency_again_is_not_a_takeover(table):
    conn = lent(table, accepted(table))
    back(table, conn, agency=2)
    table.queue(conn)
    table.lend(conn)
    assert back(table, conn, agency=2) is None


def test_only_parked_connections_idle_past_the_timeout_are_idle(table):
    parked, busy = accepted(table, 2)
    lent(table, busy)
    assert table.idle(29) == []
    assert table.idle(30) == [parked]


def test_held_winners_are_due_once_their_wait_ends(table):
    conn = lent(table, accepted(table))
    back(table, conn, held_since=10.0)
    table.park(conn)
    assert table.due(14.9) == []
    assert table.due(15.0) == [conn]


def test_the_victim_is_the_oldest_held_winners_before_any_idle_connection(table):
    idle, older, newer = accepted(table, 3)
    for conn, since in ((older, 3.0), (newer, 4.0)):
        lent(table, conn)
        back(table, conn, held_since=since)
        table.park(conn)
    assert table.victim(100) is older
    table.close(older)
    table.close(newer)
    assert table.victim(100) is idle


def test_busy_fresh_or_half_received_connections_are_never_victims(table):
    fresh = accepted(table, now=10)
    partial, queued = accepted(table, 2)
    lent(table, partial)
    back(table, partial, buffer=b"BETS=1;AGE")
    table.park(partial)
    table.queue(queued)
    assert table.victim(10.5) is None
    assert fresh.last_active == 10
