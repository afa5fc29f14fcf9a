"""Admission: accept new connections up to MAX_CONNECTIONS, make room by closing one that may
give way, refuse the rest with a paced `server busy`, and log refusals as one line per
interval (a flood must not become a flood of log lines)."""

import contextlib
import logging
import socket
import time
from collections.abc import Callable

from common.limits import raise_open_files_limit
from common.logs import event
from protocol import SERVER_BUSY, WAIT, Response, encode
from server.placement import Conn, ConnTable, Place

log = logging.getLogger(__name__)

BUSY_LOG_EVERY_S = 5.0  # refusals are logged as one line per interval, with a count
BUSY_RETRY_MS = 1000  # the retry hint sent with `server busy` (and to an evicted WINNERS)
ACCEPTS_PER_WAKE = 256
SCAN_PAUSE_S = 0.1  # after a scan that found no connection to close
RESERVED_FDS = 64  # files the acceptor needs besides client connections


def open_listener(port: int, backlog: int) -> socket.socket:
    """The lottery port, on every interface, non-blocking."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A restarted server binds the same port at once, despite TIME_WAIT connections.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("", port))
    listener.listen(backlog)
    listener.setblocking(False)
    return listener


def connection_limit(configured: int) -> tuple[int, int]:
    """(connections admitted at once, the open-files limit): MAX_CONNECTIONS, capped by the
    open-files limit after raising it as far as allowed (one descriptor per connection)."""
    open_files = raise_open_files_limit()
    limit = min(configured, max(1, open_files - RESERVED_FDS))
    if limit < configured:
        warning = f"MAX_CONNECTIONS capped to {limit} by the open-files limit {open_files}"
        log.warning(event("config", "success", warning=warning))
    return limit, open_files


def say(sock: socket.socket, response: Response) -> None:
    """Best effort: a short line on a socket nobody will read from again."""
    with contextlib.suppress(OSError):
        sock.send(encode(response))


class Admission:
    def __init__(
        self,
        table: ConnTable,
        max_connections: int,
        close: Callable[[Conn], None],
    ) -> None:
        self._table = table
        self._max = max_connections
        self._close = close  # the acceptor's: out of the table, socket closed
        self.refused = self.refused_total = 0
        self.evicted = self.evicted_total = 0
        self._logged_at = time.monotonic()
        self._no_victim_until = 0.0

    def accept(self, listener: socket.socket) -> None:
        """Take what the listener has queued (up to ACCEPTS_PER_WAKE), each admitted parked
        or refused."""
        for _ in range(ACCEPTS_PER_WAKE):
            try:
                sock, address = listener.accept()
            except (BlockingIOError, ConnectionAbortedError):
                return
            except OSError as exc:  # out of file descriptors, most likely
                log.error(event("accept", "fail", error=exc))
                return
            sock.setblocking(False)
            self.admit(sock, f"{address[0]}:{address[1]}")

    def admit(self, sock: socket.socket, peer: str) -> None:
        """A new connection (accepted here, or established by the TLS terminator, whose
        socketpair end speaks for the client): parked, or refused when nothing gives way."""
        now = time.monotonic()
        if len(self._table) >= self._max and not self._make_room(now):
            self._refuse(sock)
            return
        # Not logged: a healthcheck connects every second; agencies show up when they
        # authenticate or first speak for themselves.
        self._table.accept(sock, sock.fileno(), peer, now)

    def _make_room(self, now: float) -> bool:
        # A flood at capacity would otherwise scan every connection for each refused one.
        if now < self._no_victim_until:
            return False
        victim = self._table.victim(now)
        if victim is None:
            self._no_victim_until = now + SCAN_PAUSE_S
            return False
        if victim.place is Place.HELD:
            # Its WINNERS gets an answer it understands: not drawn yet, ask again later.
            say(victim.sock, Response(WAIT, "the draw has not happened yet", None, BUSY_RETRY_MS))
        self.evicted += 1
        self.evicted_total += 1
        self._close(victim)
        return True

    def _refuse(self, sock: socket.socket) -> None:
        say(sock, Response(WAIT, SERVER_BUSY, None, BUSY_RETRY_MS))
        sock.close()
        self.refused += 1
        self.refused_total += 1

    def log_refusals(self, now: float, final: bool = False) -> None:
        """One WARNING per interval with the counts (and a last one at shutdown)."""
        if now - self._logged_at < BUSY_LOG_EVERY_S and not final:
            return
        if self.refused or self.evicted:
            log.warning(
                event(
                    "accept",
                    "fail",
                    error=SERVER_BUSY,
                    refused=self.refused,
                    evicted=self.evicted,
                    seconds=f"{now - self._logged_at:.1f}",
                    connections=len(self._table),
                )
            )
        self.refused = self.evicted = 0
        self._logged_at = now
