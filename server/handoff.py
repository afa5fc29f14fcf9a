"""Handing a connection between the acceptor and a worker over an AF_UNIX socketpair.

The acceptor keeps every client connection and lends some to a worker for one turn: it sends,
per connection, a Ticket with the connection's file descriptor (SCM_RIGHTS, socket.send_fds);
the worker answers what has arrived and sends back one Outcome per connection (no descriptor:
the acceptor still holds its own). SOCK_SEQPACKET keeps each ticket and outcome one message.
"""

import pickle
import socket
from dataclasses import dataclass

from server.conn_state import ConnState, TurnEnd

# A ticket carries at most the unread bytes of one receive plus one partial message.
MAX_PACKET = 256 * 1024


class ChannelClosed(Exception):
    """The other end of the channel is gone (a worker died, or the acceptor closed it)."""


@dataclass(frozen=True, kw_only=True)
class Ticket:
    """What a worker needs to serve one turn of a connection (its fd travels beside it)."""

    state: ConnState
    lent_with: int  # how many connections this dispatch lends (this one's ticket first)


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """How a turn ended, for the acceptor: the connection's state as the worker left it."""

    state: ConnState
    end: TurnEnd
    active: bool  # at least one complete message was handled (resets the idle clock)


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
    try:
        channel.sendall(pickle.dumps(outcome))
    except OSError as exc:  # the acceptor closed the channel (it is shutting down) or died
        raise ChannelClosed(str(exc)) from None


def receive_outcome(channel: socket.socket) -> Outcome:
    try:
        data = channel.recv(MAX_PACKET)
    except OSError as exc:
        raise ChannelClosed(str(exc)) from None
    if not data:
        raise ChannelClosed("the worker closed the channel")
    return pickle.loads(data)
