"""The TLS terminator: a process of its own that owns the TLS port, does every handshake and
relays each connection's plaintext to the acceptor over a socketpair.

Why a process (README "How it works"): a live TLS session cannot move between processes, and
the acceptor lends a connection to any worker per turn. So the session stays here and the
acceptor gets, per connection, the other end of a stream socketpair that behaves like the
client speaking plaintext: parked, held, lent to workers and closed exactly as a plain
connection is; workers never know. Here alone the private key is loaded (after the fork:
neither the acceptor nor any worker ever holds it), and handshakes spend this process's CPU,
not the acceptor loop's.

The acceptor speaks to it over a SOCK_SEQPACKET channel: `ready` or `error` once at start, then
`conn <peer>` with the socketpair end per established connection; the acceptor sends `stop`
at shutdown (no more accepting) and `exit` when it is done (close_notify on every connection
left, then exit); the channel's end means the same.
"""

import collections
import contextlib
import itertools
import logging
import select
import signal
import socket
import sys
import time

from common.limits import raise_open_files_limit
from common.logs import event
from common.signals import die_with_parent, name_process, reset_signals
from protocol import FAIL, Response, encode
from server.admission import open_listener
from server.meters import Meters
from server.tls.profile import TLSConfigError, key_mode_warning, server_context
from server.tls.tunnel import READ_BYTES, NotTLS, TLSFailure, Tunnel

log = logging.getLogger(__name__)

TICK_S = 0.1
ACCEPTS_PER_WAKE = 256
# A handshake in progress this long may be closed to make room for a new connection (one on
# a LAN takes milliseconds): a flood of half-open handshakes cannot hold the slots, and a
# burst of real agencies waits in the backlog instead of evicting each other.
EVICTABLE_AFTER_S = 1.0
HIGH_WATER = 256 * 1024  # buffered bytes one way before reading that way stops
LINGER_S = (
    5.0  # after the acceptor closed it, how long a client that does not read may delay its close
)
FAILURE_LOG_EVERY_S = 5.0
RESERVED_FDS = 64
NOT_TLS_LINE = encode(
    Response(
        FAIL, "this port speaks TLS: connect with TLS (client tls.caPath) or to the plain port"
    )
)
EXIT_CONFIG, EXIT_OS = 2, 1
FAILURE_KINDS = ("failed", "timeouts", "plaintext", "evicted")
_IN = select.EPOLLIN | select.EPOLLRDHUP
_DEAD = select.EPOLLHUP | select.EPOLLERR


class Link:
    """One client connection: its socket, its TLS, the socketpair end towards the acceptor,
    and what is buffered each way."""

    __slots__ = (
        "closing_since",
        "id",
        "masks",
        "outer",
        "outer_eof",
        "outer_fd",
        "peer",
        "relay",
        "relay_fd",
        "relay_shut",
        "started",
        "to_client",
        "to_server",
        "tunnel",
    )

    def __init__(self, link_id: int, outer: socket.socket, peer: str, tunnel: Tunnel, now: float):
        self.id = link_id
        self.outer, self.outer_fd, self.peer, self.tunnel = outer, outer.fileno(), peer, tunnel
        self.started = now
        self.relay: socket.socket | None = None
        self.relay_fd = -1
        self.relay_shut = False
        self.to_client = bytearray()
        self.to_server = bytearray()
        self.outer_eof = False  # the client closed its side (or sent close_notify)
        self.closing_since: float | None = None  # the acceptor closed its side
        self.masks: dict[int, int] = {}


def run_terminator(channel, config, meters: Meters, parent_pid: int, inherited: list) -> None:
    """The terminator process's entry."""
    reset_signals()
    die_with_parent(parent_pid)
    name_process("lottery-tls")
    # The acceptor decides when it stops (it closes the channel): a SIGTERM or Ctrl-C sent to
    # the whole process group must not cut TLS connections the acceptor is still finishing.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for other in inherited:
        with contextlib.suppress(OSError):
            other.close()
    try:
        context = server_context(config.tls_cert, config.tls_key)
        listener = open_listener(config.server_port, config.server_listen_backlog)
    except TLSConfigError as exc:
        channel.send(f"error {EXIT_CONFIG} {exc}".encode())
        sys.exit(EXIT_CONFIG)
    except OSError as exc:
        channel.send(f"error {EXIT_OS} TLS port {config.server_port}: {exc}".encode())
        sys.exit(EXIT_OS)
    warning = key_mode_warning(config.tls_key)
    if warning:
        log.warning(event("tls", "success", warning=warning))
    channel.send(b"ready")
    code = 0
    try:
        Terminator(channel, config, context, listener, meters).serve()
    except Exception:
        log.exception(event("tls", "fail", error="unexpected error"))
        code = 1
    finally:
        channel.close()
    sys.exit(code)


class Terminator:
    def __init__(self, channel, config, context, listener, meters: Meters):
        self.channel, self.config, self.context = channel, config, context
        self.listener: socket.socket | None = listener
        self.meters = meters
        channel.setblocking(False)
        self.epoll = select.epoll()
        self.epoll.register(channel.fileno(), select.EPOLLIN)
        self.epoll.register(listener.fileno(), select.EPOLLIN)
        self.accepting = True
        self.handshaking: collections.OrderedDict[int, Link] = collections.OrderedDict()
        self.links: dict[int, Link] = {}  # every link, handshaking or established
        self.by_fd: dict[int, Link] = {}
        self.to_acceptor: collections.deque = collections.deque()  # (message, socket)
        self.acceptor_gone = False
        self.max_links = max(1, (raise_open_files_limit() - RESERVED_FDS) // 2)  # two fds each
        self._ids = itertools.count(1)
        self.failures = collections.Counter()  # this interval's, for the log line
        # Running totals; a restarted terminator goes on from its predecessor's.
        previous = meters.tls() or {}
        self.totals = collections.Counter({k: previous.get(k, 0.0) for k in FAILURE_KINDS})
        self.last_error = ""
        self._logged_at = time.monotonic()

    # --- the loop ---------------------------------------------------------------------

    def serve(self) -> None:
        log.info(event("tls", "success", port=self.config.server_port, minimum="TLSv1.2",
                       handshake_timeout_s=self.config.tls_handshake_timeout_s,
                       max_handshakes=self.config.tls_max_handshakes))  # fmt: skip
        next_tick = time.monotonic()
        while not self.acceptor_gone:
            for fd, events in self.epoll.poll(max(0.0, next_tick - time.monotonic())):
                self._event(fd, events)
            now = time.monotonic()
            if now >= next_tick:
                self._tick(now)
                next_tick = now + TICK_S
        self._close_all()

    def _event(self, fd: int, events: int) -> None:
        if self.listener is not None and fd == self.listener.fileno():
            self._accept(time.monotonic())
        elif fd == self.channel.fileno():
            if events & select.EPOLLOUT:
                self._hand_over_pending()
            if events & (select.EPOLLIN | _DEAD):
                self._from_acceptor()
        elif (link := self.by_fd.get(fd)) is not None:
            if fd == link.outer_fd:
                self._client_event(link, events)
            else:
                self._relay_event(link, events)
            if link.id in self.links:
                self._pump(link)

    def _tick(self, now: float) -> None:
        timeout = self.config.tls_handshake_timeout_s
        while self.handshaking:
            oldest = next(iter(self.handshaking.values()))
            if now - oldest.started < timeout:
                break
            self._failed("timeouts")
            self._drop(oldest)
        for link in [k for k in self.links.values() if k.closing_since is not None]:
            if now - link.closing_since >= LINGER_S:  # its client does not read: give up
                self._drop(link)
        if not self.accepting:
            self._resume_accepting(now)
        self._publish()
        self._log_failures(now)

    # --- accepting and handshakes -----------------------------------------------------

    def _accept(self, now: float) -> None:
        for _ in range(ACCEPTS_PER_WAKE):
            if not self._room(now):
                self._pause_accepting()
                return
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, ConnectionAbortedError):
                return
            except OSError as exc:  # out of file descriptors, most likely
                log.error(event("accept", "fail", error=exc))
                self._pause_accepting()
                return
            sock.setblocking(False)
            link = Link(
                next(self._ids), sock, f"{address[0]}:{address[1]}", Tunnel(self.context), now
            )
            self.links[link.id] = link
            self.handshaking[link.id] = link
            self.by_fd[link.outer_fd] = link
            self._watch(link.outer_fd, _IN, link)
            if len(self.handshaking) > self.config.tls_max_handshakes:
                # Only now that a newcomer is here (_room saw the oldest may give way).
                self._failed("evicted")
                self._drop(next(iter(self.handshaking.values())))

    def _room(self, now: float) -> bool:
        """Whether one more connection may be accepted (the oldest handshake giving way)."""
        if len(self.links) >= self.max_links:
            return False
        if len(self.handshaking) < self.config.tls_max_handshakes:
            return True
        oldest = next(iter(self.handshaking.values()))
        return now - oldest.started >= EVICTABLE_AFTER_S

    def _pause_accepting(self) -> None:
        if self.accepting and self.listener is not None:
            self.epoll.unregister(self.listener.fileno())
            self.accepting = False

    def _resume_accepting(self, now: float) -> None:
        if self.listener is not None and self._room(now):
            self.epoll.register(self.listener.fileno(), select.EPOLLIN)
            self.accepting = True

    def _established(self, link: Link) -> None:
        """Handshake done: a socketpair to the acceptor stands for the client from now on."""
        del self.handshaking[link.id]
        self.meters.add_tls("handshakes", 1)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ours.setblocking(False)
        link.relay, link.relay_fd = ours, ours.fileno()
        self.by_fd[link.relay_fd] = link
        self._watch(link.relay_fd, _IN, link)
        self.to_acceptor.append((f"conn {link.peer}".encode(), theirs))
        self._hand_over_pending()
        if not self.accepting:
            self._resume_accepting(time.monotonic())

    def _hand_over_pending(self) -> None:
        while self.to_acceptor:
            message, sock = self.to_acceptor[0]
            try:
                socket.send_fds(self.channel, [message], [sock.fileno()])
            except BlockingIOError:
                break
            except OSError:  # the acceptor is gone; the loop ends on the channel's EOF
                self.acceptor_gone = True
                break
            self.to_acceptor.popleft()
            sock.close()  # the acceptor has its own copy now
        mask = select.EPOLLIN | (select.EPOLLOUT if self.to_acceptor else 0)
        self.epoll.modify(self.channel.fileno(), mask)

    def _from_acceptor(self) -> None:
        try:
            message = self.channel.recv(64)
        except BlockingIOError:
            return
        except OSError:
            message = b""
        if not message or message == b"exit":  # the acceptor is done (or died)
            self.acceptor_gone = True
        elif message == b"stop":
            self._stop_accepting()

    def _stop_accepting(self) -> None:
        if self.listener is None:
            return
        if self.accepting:
            self.epoll.unregister(self.listener.fileno())
        self.listener.close()
        self.listener = None
        self.accepting = False
        for link in list(self.handshaking.values()):  # nothing to finish: never admitted
            self._drop(link)
        log.info(event("shutdown", "success", resource="tls listener"))

    # --- bytes each way ---------------------------------------------------------------

    def _client_event(self, link: Link, events: int) -> None:
        reading = not link.outer_eof and len(link.to_server) < HIGH_WATER
        if events & select.EPOLLERR or (events & select.EPOLLHUP and not reading):
            self._drop(link)  # reset: nothing more can reach the client
            return
        if events & select.EPOLLOUT:
            self._send_client(link)
        if reading and events & (select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP):
            self._read_client(link)

    def _read_client(self, link: Link) -> None:
        try:
            data = link.outer.recv(READ_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            link.outer_eof = True
            if not link.tunnel.established:
                self._drop(link)  # left during its handshake (a port probe, most likely)
            return
        handshaking = not link.tunnel.established
        # perf_counter, not thread_time: the thread clock cost 80 µs a call here under load
        # (a system call), more than the handshake step it would measure; a handshake step is
        # CPU-bound, so its wall time is its CPU time unless this process was preempted.
        started = time.perf_counter() if handshaking else 0.0
        try:
            plaintext = link.tunnel.receive(data)
        except NotTLS:
            with contextlib.suppress(OSError):
                link.outer.send(NOT_TLS_LINE)
            self._failed("plaintext")
            self._drop(link)
            return
        except TLSFailure as exc:
            link.to_client += link.tunnel.outgoing()  # the alert that says why, if any
            self._send_client(link)
            self._failed("failed")
            self.last_error = str(exc)
            self._drop(link)
            return
        link.to_client += link.tunnel.outgoing()
        if handshaking:
            self.meters.add_tls("handshake_seconds", time.perf_counter() - started)
            if link.tunnel.established:
                self._established(link)
        link.to_server += plaintext
        if link.tunnel.peer_closed:
            link.outer_eof = True

    def _relay_event(self, link: Link, events: int) -> None:
        if events & select.EPOLLOUT:
            self._send_relay(link)
        if events & _DEAD:
            # Every other end is closed: what is left is bounded (no writer remains), read it all.
            while link.relay is not None and self._read_relay(link):
                pass
        elif events & select.EPOLLIN:
            self._read_relay(link)

    def _read_relay(self, link: Link) -> bool:
        """One read from the acceptor's side; False when nothing more is there now."""
        try:
            data = link.relay.recv(READ_BYTES)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if data:
            self._encrypt(link, data)
            return True
        self._closed_by_acceptor(link)
        return False

    def _closed_by_acceptor(self, link: Link) -> None:
        """Its close_notify goes after its last answer; the client's is never waited for."""
        self._close_relay(link)
        link.tunnel.close()
        link.to_client += link.tunnel.outgoing()
        link.closing_since = time.monotonic()

    def _encrypt(self, link: Link, data: bytes) -> None:
        try:
            link.tunnel.send(data)
        except TLSFailure:
            self._drop(link)
            return
        link.to_client += link.tunnel.outgoing()

    def _send_client(self, link: Link) -> None:
        if not link.to_client:
            return
        try:
            sent = link.outer.send(link.to_client)
        except BlockingIOError:
            return
        except OSError:
            self._drop(link)
            return
        del link.to_client[:sent]

    def _send_relay(self, link: Link) -> None:
        if not link.to_server or link.relay is None:
            return
        try:
            sent = link.relay.send(link.to_server)
        except BlockingIOError:
            return
        except OSError:
            sent = len(link.to_server)  # nobody reads it any more; its close is on the way
        del link.to_server[:sent]

    def _pump(self, link: Link) -> None:
        """Move what can move, finish a link whose both sides are done, and poll for what
        it waits on."""
        self._send_client(link)
        self._send_relay(link)
        if link.id not in self.links:
            return
        if link.relay is not None and link.outer_eof and not link.to_server and not link.relay_shut:
            link.relay_shut = True
            with contextlib.suppress(OSError):  # the acceptor sees the client's EOF
                link.relay.shutdown(socket.SHUT_WR)
        if link.closing_since is not None and not link.to_client:
            self._drop(link)
            return
        outer = (_IN if not link.outer_eof and len(link.to_server) < HIGH_WATER else 0) | (
            select.EPOLLOUT if link.to_client else 0
        )
        self._watch(link.outer_fd, outer, link)
        if link.relay is not None:
            relay = (_IN if len(link.to_client) < HIGH_WATER else 0) | (
                select.EPOLLOUT if link.to_server else 0
            )
            self._watch(link.relay_fd, relay, link)

    def _watch(self, fd: int, mask: int, link: Link) -> None:
        if fd not in link.masks:
            self.epoll.register(fd, mask)
        elif link.masks[fd] != mask:
            self.epoll.modify(fd, mask)
        link.masks[fd] = mask

    # --- closing ----------------------------------------------------------------------

    def _close_relay(self, link: Link) -> None:
        if link.relay is None:
            return
        self._unwatch(link, link.relay_fd)
        link.relay.close()
        link.relay = None
        link.to_server.clear()

    def _unwatch(self, link: Link, fd: int) -> None:
        if link.masks.pop(fd, None) is not None:
            self.epoll.unregister(fd)
        self.by_fd.pop(fd, None)

    def _drop(self, link: Link) -> None:
        """Close both sides now (what was sent before is sent; nothing more is)."""
        self._close_relay(link)
        self._unwatch(link, link.outer_fd)
        link.outer.close()
        self.links.pop(link.id, None)
        self.handshaking.pop(link.id, None)

    def _close_all(self) -> None:
        """The acceptor is done: close_notify on every connection left, one try to send it
        (never waiting for the peer's), then close."""
        if self.listener is not None:
            self.listener.close()
        closed = len(self.links)
        for link in list(self.links.values()):
            if link.tunnel.established and link.closing_since is None:
                while link.relay is not None and self._read_relay(link):
                    pass  # the acceptor's last answers first
                if link.closing_since is None:
                    self._closed_by_acceptor(link)
            self._send_client(link)
            if link.id in self.links:
                self._drop(link)
        for _, sock in self.to_acceptor:
            sock.close()
        self._publish()
        self.epoll.close()
        totals = self.meters.tls() or {}
        log.info(event("shutdown", "success", resource="tls connections", closed=closed,
                       handshakes=int(totals.get("handshakes", 0)),
                       handshake_s=f"{totals.get('handshake_seconds', 0.0):.3f}"))  # fmt: skip

    # --- meters and logs --------------------------------------------------------------

    def _failed(self, kind: str) -> None:
        self.failures[kind] += 1
        self.totals[kind] += 1

    def _publish(self) -> None:
        self.meters.set_tls(
            in_progress=len(self.handshaking),
            connections=len(self.links) - len(self.handshaking),
            **{kind: self.totals[kind] for kind in FAILURE_KINDS},
        )

    def _log_failures(self, now: float) -> None:
        if now - self._logged_at < FAILURE_LOG_EVERY_S:
            return
        if self.failures:
            log.warning(event("tls_handshake", "fail", **dict(self.failures),
                              error=self.last_error or "-",
                              seconds=f"{now - self._logged_at:.1f}"))  # fmt: skip
        self.failures.clear()
        self.last_error = ""  # each line says its own interval's reason
        self._logged_at = now
