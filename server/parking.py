"""The acceptor's table of client connections: where each one is, which agency it speaks
for, and which ones are due (idle too long, a held WINNERS whose wait ended). No I/O here."""

from dataclasses import dataclass, field
from enum import Enum


class Place(Enum):
    PARKED = "parked"  # in the acceptor's poll set, waiting for bytes
    HELD = "held"  # a WINNERS waits for the draw; polled only for the peer hanging up
    QUEUED = "queued"  # has something to answer, waiting for a free worker
    LENT = "lent"  # a worker is serving a turn of it


@dataclass
class Conn:
    id: int
    sock: object  # the acceptor's socket; never read here
    peer: str
    last_active: float  # when it was accepted or last had a complete message answered
    agency: int | None = None
    buffer: bytes = b""  # received by a worker but not handled yet (a partial message)
    held_since: float | None = None
    place: Place = Place.PARKED
    doomed: str | None = None  # close it when its turn ends, for this reason
    auth: object = None  # its AuthState between turns (opaque here)


@dataclass
class ConnTable:
    idle_timeout_s: float
    winners_wait_s: float
    # An idle connection may be closed to make room for a new one after this long: a client
    # between two messages is never idle that long, one that holds a slot for nothing is.
    evictable_after_s: float = 1.0
    conns: dict[int, Conn] = field(default_factory=dict)
    owners: dict[int, int] = field(default_factory=dict)  # agency -> conn id
    _next_id: int = 0

    def __len__(self) -> int:
        return len(self.conns)

    def add(self, sock, peer: str, now: float) -> Conn:
        self._next_id += 1
        conn = Conn(self._next_id, sock, peer, now)
        self.conns[conn.id] = conn
        return conn

    def remove(self, conn: Conn) -> None:
        self.conns.pop(conn.id, None)
        if conn.agency is not None and self.owners.get(conn.agency) == conn.id:
            del self.owners[conn.agency]

    def bind(self, conn: Conn, agency: int | None) -> Conn | None:
        """Record that conn speaks for agency; return an older connection of the same agency,
        which the newer one takes over (a client that reconnected before its old connection
        was noticed gone)."""
        if agency is None or conn.agency == agency:
            return None
        conn.agency = agency
        previous_id = self.owners.get(agency)
        self.owners[agency] = conn.id
        if previous_id is None or previous_id == conn.id:
            return None
        return self.conns.get(previous_id)

    def idle(self, now: float) -> list[Conn]:
        """Parked connections with no complete message for idle_timeout_s."""
        return [
            c
            for c in self.conns.values()
            if c.place is Place.PARKED and now - c.last_active >= self.idle_timeout_s
        ]

    def due(self, now: float, held: set[int]) -> list[Conn]:
        """Held connections (ids in held) whose WINNERS has waited winners_wait_s: time to
        answer `wait`."""
        return [
            c for c in (self.conns[i] for i in held) if now - c.held_since >= self.winners_wait_s
        ]

    def victim(self, now: float) -> Conn | None:
        """The connection to close to make room for a new one, if any may be: the longest
        held WINNERS (its agency finished: it only waits), else the longest idle parked one
        with no partial message. Connections being served or queued are never victims."""
        held = [c for c in self.conns.values() if c.place is Place.HELD]
        if held:
            return min(held, key=lambda c: c.held_since)
        idle = [
            c
            for c in self.conns.values()
            if c.place is Place.PARKED
            and not c.buffer
            and now - c.last_active >= self.evictable_after_s
        ]
        return min(idle, key=lambda c: c.last_active) if idle else None
