"""A connection's state between turns, as one value: the acceptor's table entry holds it, a
ticket lends it to a worker, the turn's outcome brings it back, and a session starts from it.
Adding a field is one edit here plus its use."""

from dataclasses import dataclass, field
from enum import Enum

from server.keys import AuthState


@dataclass(frozen=True, kw_only=True)
class ConnState:
    conn_id: int
    peer: str
    agency: int | None = None  # bound by its first agency message (with keys: by AUTH)
    auth: AuthState = field(default_factory=AuthState)
    buffer: bytes = b""  # received but not handled yet (a partial message, or a held WINNERS)
    held_since: float | None = None  # time.monotonic() when its WINNERS was first held

    @property
    def half_received(self) -> bool:
        """A message has begun arriving and must be finished (a held WINNERS is whole)."""
        return bool(self.buffer) and self.held_since is None


class TurnEnd(Enum):
    """How a connection's part of a worker's turn ended."""

    PARK = "park"  # nothing complete left (or a WINNERS held): back to the acceptor's poll set
    CLOSE = "close"  # done; the reason was logged by the worker
    MORE = "more"  # complete messages are left but the time slice ran out: queue it again
