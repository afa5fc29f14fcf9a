"""Where each client connection is, as one state machine with the indexes that follow from
it (h11's rule: everything that changes a connection's place lives here). No I/O: the table
tells the acceptor, through watch/unwatch, which connections to poll and how."""

import collections
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum

from server.conn_state import ConnState


class Place(Enum):
    PARKED = "parked"  # in the acceptor's poll set, waiting for bytes
    HELD = "held"  # a WINNERS waits for the draw; polled only for the peer hanging up
    QUEUED = "queued"  # has something to answer, waiting for a free worker
    LENT = "lent"  # a worker is serving a turn of it
    CLOSED = "closed"  # out of the table


# Every legal move; anything else is a bug and raises IllegalTransition.
TRANSITIONS: dict[Place | None, frozenset[Place]] = {
    None: frozenset({Place.PARKED}),  # accepted
    Place.PARKED: frozenset({Place.QUEUED, Place.CLOSED}),
    Place.HELD: frozenset({Place.QUEUED, Place.CLOSED}),
    Place.QUEUED: frozenset({Place.LENT, Place.CLOSED}),
    Place.LENT: frozenset({Place.PARKED, Place.HELD, Place.QUEUED, Place.CLOSED}),
    Place.CLOSED: frozenset(),
}
POLLED = frozenset({Place.PARKED, Place.HELD})


class IllegalTransition(RuntimeError):
    """A connection was asked to move where it cannot go from its place (our bug)."""


@dataclass(eq=False)
class Conn:
    """The acceptor's entry for one connection: its state, and what only the acceptor needs."""

    state: ConnState
    sock: object  # the acceptor's socket; never read here
    fd: int
    last_active: float  # when it was accepted or last had a complete message answered
    place: Place | None = None
    doomed: str | None = None  # close it when its turn ends, for this reason

    @property
    def id(self) -> int:
        return self.state.conn_id


@dataclass
class ConnTable:
    idle_timeout_s: float
    winners_wait_s: float
    watch: Callable[[Conn], None] = lambda conn: None  # poll it (as conn.place says)
    unwatch: Callable[[Conn], None] = lambda conn: None  # stop polling it
    # An idle connection may be closed to make room for a new one after this long: a client
    # between two messages is never idle that long, one that holds a slot for nothing is.
    evictable_after_s: float = 1.0
    conns: dict[int, Conn] = field(default_factory=dict)
    polled: dict[int, Conn] = field(default_factory=dict)  # fd -> conn, PARKED or HELD
    held: set[int] = field(default_factory=set)  # ids of HELD connections
    ready: collections.deque = field(default_factory=collections.deque)  # QUEUED ids, in order
    owners: dict[int, int] = field(default_factory=dict)  # agency -> conn id
    owners_version: int = 0  # moves whenever owners does (for whoever mirrors it)
    _next_id: int = 0

    def __len__(self) -> int:
        return len(self.conns)

    # --- transitions ------------------------------------------------------------------

    def _move(self, conn: Conn, to: Place) -> None:
        if to not in TRANSITIONS[conn.place]:
            raise IllegalTransition(f"connection {conn.id}: {conn.place} -> {to}")
        if conn.place in POLLED:
            del self.polled[conn.fd]
            self.unwatch(conn)
        if conn.place is Place.HELD:
            self.held.discard(conn.id)
        if conn.place is Place.QUEUED:
            self._unready(conn.id)
        conn.place = to
        if to is Place.QUEUED:
            self.ready.append(conn.id)
        if to is Place.HELD:
            self.held.add(conn.id)
        if to in POLLED:
            self.polled[conn.fd] = conn
            self.watch(conn)

    def _unready(self, conn_id: int) -> None:
        # The front one when it is lent; elsewhere only when closed at shutdown.
        if self.ready and self.ready[0] == conn_id:
            self.ready.popleft()
        else:
            self.ready.remove(conn_id)

    def accept(self, sock, fd: int, peer: str, now: float) -> Conn:
        """A new connection, parked."""
        self._next_id += 1
        conn = Conn(ConnState(conn_id=self._next_id, peer=peer), sock, fd, now)
        self.conns[conn.id] = conn
        self._move(conn, Place.PARKED)
        return conn

    def queue(self, conn: Conn) -> None:
        """A parked connection got bytes, or a held one must be answered: wait for a worker."""
        self._move(conn, Place.QUEUED)

    def lend(self, conn: Conn) -> None:
        """A worker has its ticket."""
        self._move(conn, Place.LENT)

    def give_back(self, conn: Conn, state: ConnState, active: bool, now: float) -> Conn | None:
        """A turn ended: the lent connection's state as the worker left it. Returns an older
        connection of the same agency, which this one takes over."""
        if conn.place is not Place.LENT:
            raise IllegalTransition(f"connection {conn.id}: given back while {conn.place}")
        if conn.doomed is not None:  # taken over while lent: it speaks for nobody now
            conn.state = replace(state, agency=None)
            return None
        previous = self._bind(conn, state.agency)
        conn.state = state
        if active:
            conn.last_active = now
        return previous

    def park(self, conn: Conn) -> None:
        """Back from a turn with nothing to answer: held if its WINNERS waits, else parked."""
        self._move(conn, Place.HELD if conn.state.held_since is not None else Place.PARKED)

    def close(self, conn: Conn) -> None:
        """Out of the table (the caller closes its socket). A lent connection closes only when
        its turn is over or its worker died."""
        self._move(conn, Place.CLOSED)
        del self.conns[conn.id]
        agency = conn.state.agency
        if agency is not None and self.owners.get(agency) == conn.id:
            del self.owners[agency]
            self.owners_version += 1

    def _bind(self, conn: Conn, agency: int | None) -> Conn | None:
        if agency is None or conn.state.agency == agency:
            return None
        previous_id = self.owners.get(agency)
        self.owners[agency] = conn.id
        self.owners_version += 1
        if previous_id is None or previous_id == conn.id:
            return None
        previous = self.conns.get(previous_id)
        if previous is not None:  # the agency is the newer one's now
            previous.state = replace(previous.state, agency=None)
        return previous

    # --- queries ----------------------------------------------------------------------

    def next_ready(self) -> Conn | None:
        """The connection that has waited longest for a worker (it stays queued until lent)."""
        return self.conns[self.ready[0]] if self.ready else None

    def idle(self, now: float) -> list[Conn]:
        """Parked connections with no complete message for idle_timeout_s."""
        return [
            c
            for c in self.polled.values()
            if c.place is Place.PARKED and now - c.last_active >= self.idle_timeout_s
        ]

    def due(self, now: float) -> list[Conn]:
        """Held connections whose WINNERS has waited winners_wait_s: time to answer `wait`."""
        conns = (self.conns[i] for i in self.held)
        return [c for c in conns if now - c.state.held_since >= self.winners_wait_s]

    def held_conns(self) -> list[Conn]:
        return [self.conns[i] for i in self.held]

    def victim(self, now: float) -> Conn | None:
        """The connection to close to make room for a new one, if any may be: the longest
        held WINNERS (its agency finished: it only waits), else the longest idle parked one
        with no partial message. Connections being served or queued are never victims."""
        if self.held:
            return min(self.held_conns(), key=lambda c: c.state.held_since)
        idle = [
            c
            for c in self.polled.values()
            if c.place is Place.PARKED
            and not c.state.buffer
            and now - c.last_active >= self.evictable_after_s
        ]
        return min(idle, key=lambda c: c.last_active) if idle else None
