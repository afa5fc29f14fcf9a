"""The acceptor's connection table: takeover, idle and held connections, eviction choice."""

from server.parking import ConnTable, Place


def table() -> ConnTable:
    return ConnTable(idle_timeout_s=30, winners_wait_s=5, evictable_after_s=1)


def test_a_second_connection_for_an_agency_takes_over_the_first():
    t = table()
    old, new = t.add("s1", "a:1", 0), t.add("s2", "a:2", 0)
    assert t.bind(old, 3) is None
    assert t.bind(new, 3) is old
    assert t.owners[3] == new.id
    t.remove(old)  # the old one closing does not unbind the newer one
    assert t.owners[3] == new.id


def test_binding_the_same_agency_again_is_not_a_takeover():
    t = table()
    conn = t.add("s", "a:1", 0)
    t.bind(conn, 2)
    assert t.bind(conn, 2) is None


def test_only_parked_connections_idle_past_the_timeout_are_idle():
    t = table()
    parked, lent = t.add("s1", "p", 0), t.add("s2", "l", 0)
    lent.place = Place.LENT
    assert t.idle(29) == []
    assert t.idle(30) == [parked]


def test_held_winners_are_due_once_their_wait_ends():
    t = table()
    conn = t.add("s", "p", 0)
    conn.place, conn.held_since = Place.HELD, 10.0
    assert t.due(14.9, {conn.id}) == []
    assert t.due(15.0, {conn.id}) == [conn]


def test_the_victim_is_the_oldest_held_winners_before_any_idle_connection():
    t = table()
    idle = t.add("s1", "i", 0)
    older, newer = t.add("s2", "h1", 0), t.add("s3", "h2", 0)
    for conn, since in ((older, 3.0), (newer, 4.0)):
        conn.place, conn.held_since = Place.HELD, since
    assert t.victim(100) is older
    t.remove(older)
    t.remove(newer)
    assert t.victim(100) is idle


def test_busy_fresh_or_half_received_connections_are_never_victims():
    t = table()
    fresh = t.add("s1", "f", 10)
    partial = t.add("s2", "p", 0)
    partial.buffer = b"BETS=1;AGE"
    queued = t.add("s3", "q", 0)
    queued.place = Place.QUEUED
    assert t.victim(10.5) is None
    assert fresh.last_active == 10
