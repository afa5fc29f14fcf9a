"""Handing a connection between the acceptor and a worker over an AF_UNIX socketpair.

The acceptor keeps every client connection and lends some to a worker for one turn: it sends,
per connection, a Ticket with the connection's file descriptor (SCM_RIGHTS, socket.send_fds);
the worker answers what has arrived and sends back one Outcome per connection (no descriptor:
the acceptor still holds its own). SOCK_SEQPACKET keeps each ticket and outcome one message.
"""

import pickle
import socket
from dataclasses import dataclass

from server.keys import AuthState

# A ticket carries at most the unread bytes of one receive plus one partial message.
MAX_PACKET = 256 * 1024


class ChannelClosed(Exception):
    """The other end of the channel is gone (a worker died, or the acceptor closed it)."""


@dataclass(frozen=True)
class Ticket:
    """What a worker needs to serve one turn of a connection (its fd travels beside it)."""

    conn_id: int
    peer: str
    agency: int | None  # bound by the connection's first agency message
    buffer: bytes  # received but not yet handled
    held_since: float | None  # time.monotonic() when its WINNERS was first held, if it is
    auth: AuthState | None = None
    lent_with: int = 1  # how many connections this dispatch lends (this one's ticket first)


@dataclass(frozen=True)
class Outcome:
    """How a turn ended, for the acceptor."""

    conn_id: int
    close: bool  # the connection is done (its reason was logged by the worker)
    agency: int | None
    buffer: bytes
    held_since: float | None  # a WINNERS waits for the draw at the front of buffer
    active: bool  # at least one complete message was handled (resets the idle clock)
    more: bool  # complete messages are left (the turn's time slice ran out)
    auth: AuthState | None = None


def channel_pair() -> tuple[socket.socket, socket.socket]:
    """The acceptor's end and the worker's end of a new channel."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def send_ticket(channel: socket.socket, ticket: Ticket, conn: socket.socket) -> None:
    try:
        socket.send_fds(channel, [pickle.dumps(ticket)], [conn.fileno()])
    except OSError as exc:
        raise ChannelClosed(str(exc)) from None


def receive_ticket(channel: socket.socket) -> tuple[Ticket, socket.socket]:
    """The next ticket and the worker's own copy of its connection."""
    data, fds, flags, _ = socket.recv_fds(channel, MAX_PACKET, 1)
    if not data:
        for fd in fds:
            socket.close(fd)
        raise ChannelClosed("the acceptor closed the channel")
    if flags & socket.MSG_TRUNC or len(fds) != 1:
        raise RuntimeError(f"malformed ticket (flags {flags}, {len(fds)} descriptors)")
    return pickle.loads(data), socket.socket(fileno=fds[0])


def send_outcome(channel: socket.socket, outcome: Outcome) -> None:
    channel.sendall(pickle.dumps(outcome))


def receive_outcome(channel: socket.socket) -> Outcome:
    try:
        data = channel.recv(MAX_PACKET)
    except OSError as exc:
        raise ChannelClosed(str(exc)) from None
    if not data:
        raise ChannelClosed("the worker closed the channel")
    return pickle.loads(data)
