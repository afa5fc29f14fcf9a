"""The acceptor (arbiter): owns the listener and every client connection, lends a connection
to a worker process only while it has something to answer, and shuts everything down in order.

A connection with nothing to do (between messages, or holding a WINNERS until the draw) costs
a file descriptor in the acceptor's epoll set, never a process: any number of agencies can be
connected while a fixed pool of workers does the work (Apache's event MPM, gunicorn's
pre-forked workers).
"""

import collections
import contextlib
import gc
import logging
import multiprocessing
import os
import resource
import select
import signal
import socket
import time
from multiprocessing.managers import SyncManager

from common.logs import event
from common.signals import StopFlag, die_with_parent, name_process, reset_signals
from protocol import SERVER_BUSY, WAIT, Response, encode
from server.config import ServerConfig
from server.handoff import ChannelClosed, Ticket, receive_outcome, send_ticket
from server.keys import AgencyKeys
from server.parking import Conn, ConnTable, Place
from server.pool import WorkerPool
from server.state import LotteryState
from storage import Rules, open_lottery
from transport.stream import drain

log = logging.getLogger(__name__)

# fork: workers start in milliseconds and inherit the storage lock; explicit because Python
# 3.14 changed the default start method on Linux.
START_METHOD = "fork"
TICK_S = 0.1  # how often timers (idle connections, held WINNERS) are looked at
BUSY_LOG_EVERY_S = 5.0  # refusals are logged as one line per interval, with a count
BUSY_RETRY_MS = 1000  # the retry hint sent with `server busy` (and to an evicted WINNERS)
ACCEPTS_PER_WAKE = 256
MAX_LENT = 32  # connections lent to one worker for one turn at most
MAX_LENT_BYTES = 128 * 1024  # their unhandled bytes, so tickets never fill the channel
RESERVED_FDS = 64  # files the acceptor needs besides client connections
_PARKED = select.EPOLLIN | select.EPOLLRDHUP
_HELD = select.EPOLLRDHUP


def _manager_init(parent_pid: int) -> None:
    reset_signals()
    name_process("lottery-state")
    # Ctrl-C reaches the whole process group: the Manager must outlive the workers it
    # serves and stop only when the acceptor shuts it down (or dies).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_parent(parent_pid)


def raise_open_files_limit() -> int:
    """Raise the soft limit on open files to the hard one; return the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft


class Acceptor:
    """Owns the listener, the connections, the workers, the Manager and a storage handle."""

    def __init__(self, config: ServerConfig, keys: AgencyKeys | None = None) -> None:
        self.config = config
        self.keys = keys
        self.ctx = multiprocessing.get_context(START_METHOD)
        self.table = ConnTable(config.idle_timeout_s, config.winners_wait_s)
        self.ready: collections.deque[int] = collections.deque()
        self.epoll = select.epoll()
        self.by_fd: dict[int, Conn] = {}
        self.held: set[int] = set()  # ids of connections holding a WINNERS
        self.refused = 0
        self.evicted = 0
        self._busy_logged = time.monotonic()
        self._no_victim_until = 0.0
        self.stopping = False

    # --- start ------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; return the exit code."""
        config = self.config
        open_files = raise_open_files_limit()
        self.max_connections = min(config.max_connections, max(1, open_files - RESERVED_FDS))
        if self.max_connections < config.max_connections:
            log.warning(
                event(
                    "config",
                    "success",
                    warning=f"MAX_CONNECTIONS capped to {self.max_connections} by the "
                    f"open-files limit {open_files}",
                )
            )
        storage_lock = self.ctx.Lock()
        rules = Rules(
            lottery_id=config.lottery_id,
            agencies=config.agencies,
            winning_number=config.winning_number,
        )
        # Decided here, before any fork; it keeps no storage handle open for workers to inherit.
        lottery = open_lottery(config.storage_dir, rules, storage_lock)
        manager = SyncManager(ctx=self.ctx)
        manager.start(_manager_init, (os.getpid(),))
        self.state = LotteryState(manager, self.ctx, set(lottery.finished), lottery.drawn)
        self.flag = StopFlag(extra_signals=(signal.SIGCHLD,))
        self.listener = self._listen()
        self.pool = WorkerPool(
            self.ctx,
            config.workers,
            (config, storage_lock, self.state, self.keys, os.getpid()),
            on_spawn=lambda channel: self.epoll.register(channel.fileno(), select.EPOLLIN),
            on_exit=lambda channel: self.epoll.unregister(channel.fileno()),
        )
        # Workers are forked from here: keep the collector from touching (and so copying)
        # every inherited object in each of them.
        gc.freeze()
        self.pool.start(self._inherited)
        self.epoll.register(self.listener.fileno(), select.EPOLLIN)
        self.epoll.register(self.flag.wake_fd, select.EPOLLIN)
        log.info(
            event(
                "listen",
                "success",
                port=config.server_port,
                backlog=config.server_listen_backlog,
                workers=config.workers,
                max_connections=self.max_connections,
                open_files=open_files,
                finished=len(self.state.finished()),
                drawn=self.state.drawn,
            )
        )
        try:
            self._serve()
        finally:
            self._shutdown(manager)
        return 0

    def _listen(self) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # A restarted server binds the same port at once, despite TIME_WAIT connections.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("", self.config.server_port))
        listener.listen(self.config.server_listen_backlog)
        listener.setblocking(False)
        return listener

    def _inherited(self) -> list:
        """What a newly forked worker must close: everything the acceptor holds open."""
        return [self.listener, self.epoll, *(c.sock for c in self.table.conns.values())]

    # --- the loop ---------------------------------------------------------------------

    def _serve(self) -> None:
        next_tick = time.monotonic()
        while not self.stopping or self._lingering():
            now = time.monotonic()
            timeout = max(0.0, next_tick - now)
            self._poll(timeout)
            now = time.monotonic()
            if now >= next_tick:
                self._tick(now)
                next_tick = now + TICK_S
            self._dispatch()
            if self.flag.stopping and not self.stopping:
                self._begin_shutdown()

    def _poll(self, timeout: float) -> None:
        workers = self.pool.by_fd()
        for fd, events in self.epoll.poll(timeout):
            if fd == self.flag.wake_fd:
                drain(fd)
                self._reap()
            elif fd == self.listener.fileno():
                self._accept()
            elif fd in workers:
                self._finish_turn(workers[fd])
            elif (conn := self.by_fd.get(fd)) is not None:
                self._readable(conn, events)

    def _tick(self, now: float) -> None:
        for conn in self.table.idle(now):
            log.info(
                event(
                    "connection",
                    "fail",
                    agency=conn.agency,
                    peer=conn.peer,
                    error=f"idle for {self.config.idle_timeout_s}s",
                )
            )
            self._close(conn)
        for conn in self.table.due(now, self.held):
            self._queue(conn)
        self._log_refusals(now)
        if not self.stopping:
            self.pool.restart(self._inherited)

    # --- connections ------------------------------------------------------------------

    def _accept(self) -> None:
        for _ in range(ACCEPTS_PER_WAKE):
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, ConnectionAbortedError):
                return
            except OSError as exc:  # out of file descriptors, most likely
                log.error(event("accept", "fail", error=exc))
                return
            sock.setblocking(False)
            peer = f"{address[0]}:{address[1]}"
            now = time.monotonic()
            if len(self.table) >= self.max_connections and not self._make_room(now):
                self._refuse(sock)
                continue
            # Not logged: a healthcheck connects every second; agencies show up when they
            # authenticate or first speak for themselves.
            self._park(self.table.add(sock, peer, now))

    def _make_room(self, now: float) -> bool:
        # A flood at capacity would otherwise scan every connection for each refused one.
        if now < self._no_victim_until:
            return False
        victim = self.table.victim(now)
        if victim is None:
            self._no_victim_until = now + TICK_S
            return False
        if victim.place is Place.HELD:
            # Its WINNERS gets an answer it understands: not drawn yet, ask again later.
            undrawn = Response(WAIT, "the draw has not happened yet", None, BUSY_RETRY_MS)
            self._say(victim.sock, undrawn)
        self.evicted += 1
        self._close(victim)
        return True

    def _refuse(self, sock: socket.socket) -> None:
        self._say(sock, Response(WAIT, SERVER_BUSY, None, BUSY_RETRY_MS))
        sock.close()
        self.refused += 1

    def _say(self, sock: socket.socket, response: Response) -> None:
        with contextlib.suppress(OSError):  # best effort: a short line on a fresh socket
            sock.send(encode(response))

    def _log_refusals(self, now: float) -> None:
        if now - self._busy_logged < BUSY_LOG_EVERY_S and not self.stopping:
            return
        if self.refused or self.evicted:
            log.warning(
                event(
                    "accept",
                    "fail",
                    error=SERVER_BUSY,
                    refused=self.refused,
                    evicted=self.evicted,
                    seconds=f"{now - self._busy_logged:.1f}",
                    connections=len(self.table),
                )
            )
        self.refused = self.evicted = 0
        self._busy_logged = now

    def _readable(self, conn: Conn, events: int) -> None:
        if conn.place is Place.HELD:  # only hang-ups are watched while held
            log.debug(event("connection_closed", "success", peer=conn.peer, reason="peer left"))
            self._close(conn)
        else:
            self._queue(conn)

    def _park(self, conn: Conn) -> None:
        conn.place = Place.HELD if conn.held_since is not None else Place.PARKED
        fd = conn.sock.fileno()
        self.by_fd[fd] = conn
        if conn.place is Place.HELD:
            self.held.add(conn.id)
        self.epoll.register(fd, _HELD if conn.place is Place.HELD else _PARKED)

    def _unpark(self, conn: Conn) -> None:
        if conn.place in (Place.PARKED, Place.HELD):
            fd = conn.sock.fileno()
            self.epoll.unregister(fd)
            del self.by_fd[fd]
            self.held.discard(conn.id)

    def _queue(self, conn: Conn) -> None:
        if conn.place in (Place.QUEUED, Place.LENT):
            return
        self._unpark(conn)
        conn.place = Place.QUEUED
        self.ready.append(conn.id)

    def _close(self, conn: Conn) -> None:
        """Close a connection that is not lent to a worker."""
        self._unpark(conn)
        self._close_returned(conn)

    # --- workers ----------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Lend queued connections to idle workers, first come first served. With more
        queued than idle workers, a worker gets several: their writes share one commit."""
        idle = self.pool.idle()
        while self.ready and idle:
            worker = idle.pop()
            share = min(MAX_LENT, -(-len(self.ready) // (len(idle) + 1)))
            batch, size = [], 0
            while self.ready and len(batch) < share and size < MAX_LENT_BYTES:
                conn = self.table.conns.get(self.ready.popleft())
                if conn is not None and conn.place is Place.QUEUED:
                    batch.append(conn)
                    size += len(conn.buffer)
            for conn in batch:
                ticket = Ticket(
                    conn.id,
                    conn.peer,
                    conn.agency,
                    conn.buffer,
                    conn.held_since,
                    conn.auth,
                    len(batch),
                )
                try:
                    send_ticket(worker.channel, ticket, conn.sock)
                except ChannelClosed:  # the worker died; reaped on SIGCHLD
                    self.ready.extendleft(c.id for c in reversed(batch) if c.place is Place.QUEUED)
                    break
                conn.place = Place.LENT
                worker.conn_ids.add(conn.id)

    def _finish_turn(self, worker) -> None:
        try:
            outcome = receive_outcome(worker.channel)
        except ChannelClosed:
            return  # it died: _reap closes the connections it held
        if outcome.conn_id not in worker.conn_ids:
            return
        worker.conn_ids.discard(outcome.conn_id)
        conn = self.table.conns.get(outcome.conn_id)
        if conn is None:
            return
        previous = self.table.bind(conn, outcome.agency)
        if previous is not None:
            self._take_over(previous, conn)
        conn.buffer = outcome.buffer
        conn.held_since = outcome.held_since
        conn.auth = outcome.auth
        if outcome.active:
            conn.last_active = time.monotonic()
        conn.place = Place.PARKED  # not in the epoll set yet
        if outcome.close or conn.doomed:
            self._close_returned(conn)
        elif self.stopping and not (conn.buffer and conn.held_since is None):
            self._close_returned(conn)  # nothing half-received: nothing to finish
        elif outcome.more:
            conn.place = Place.QUEUED
            self.ready.append(conn.id)
        else:
            self._park(conn)
        self._release_held()

    def _release_held(self) -> None:
        """Once the draw happened, every held WINNERS is answered (the worker whose END ran
        the draw returns its turn right after, so this runs within milliseconds of it)."""
        if self.held and self.state.drawn:
            for conn_id in list(self.held):
                self._queue(self.table.conns[conn_id])

    def _close_returned(self, conn: Conn) -> None:
        self.table.remove(conn)
        with contextlib.suppress(OSError):
            conn.sock.close()

    def _take_over(self, previous: Conn, newer: Conn) -> None:
        log.info(
            event(
                "takeover",
                "success",
                agency=newer.agency,
                previous=previous.peer,
                peer=newer.peer,
            )
        )
        previous.agency = None  # the agency is the newer one's now
        reason = "taken over by a newer connection"
        log.info(event("connection_closed", "success", peer=previous.peer, reason=reason))
        if previous.place is Place.LENT:
            previous.doomed = reason  # it finishes the message it is answering first
        else:
            self._close(previous)

    def _reap(self) -> None:
        for worker in self.pool.reap():
            for conn_id in worker.conn_ids:  # lent to it: their turn cannot be finished
                conn = self.table.conns.get(conn_id)
                if conn is not None:
                    log.warning(
                        event("connection", "fail", peer=conn.peer, error="its worker died")
                    )
                    self._close_returned(conn)

    # --- shutdown ---------------------------------------------------------------------

    def _begin_shutdown(self) -> None:
        """Stop accepting; close every connection with nothing half-received at once."""
        self.stopping = True
        self._shutdown_started = time.monotonic()
        log.info(event("shutdown", "in_progress", signal=self.flag.name or "none"))
        self.epoll.unregister(self.listener.fileno())
        self.listener.close()
        log.info(event("shutdown", "success", resource="listener"))
        closed = 0
        for conn in list(self.table.conns.values()):
            if conn.place is not Place.LENT and not (conn.buffer and conn.held_since is None):
                self._close(conn)
                closed += 1
        log.info(event("shutdown", "in_progress", resource="connections", closed=closed))

    def _lingering(self) -> bool:
        """While stopping: connections finishing a message, within SHUTDOWN_GRACE_S."""
        elapsed = time.monotonic() - self._shutdown_started
        return bool(self.table.conns) and elapsed < self.config.shutdown_grace_s

    def _shutdown(self, manager) -> None:
        if not self.stopping:  # an error ended the loop
            self._begin_shutdown()
        self._log_refusals(time.monotonic())  # the last interval's count
        killed = len(self.table.conns)
        for conn in list(self.table.conns.values()):
            self._close_returned(conn)
        log.info(event("shutdown", "success", resource="connections", killed=killed))
        grace = max(0.5, self.config.shutdown_grace_s - (time.monotonic() - self._shutdown_started))
        workers_killed = self.pool.stop(grace)
        log.info(event("shutdown", "success", resource="workers", killed=workers_killed))
        manager.shutdown()
        log.info(event("shutdown", "success", resource="manager"))
        self.epoll.close()
        self.flag.close()
