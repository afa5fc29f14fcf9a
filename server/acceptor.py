"""The acceptor (arbiter): owns the listener and every client connection, lends a connection
to a worker process only while it has something to answer, and shuts everything down in order.

A connection with nothing to do (between messages, or holding a WINNERS until the draw) costs
a file descriptor in the acceptor's epoll set, never a process: any number of agencies can be
connected while a fixed pool of workers does the work (Apache's event MPM, gunicorn's
pre-forked workers). Where each connection is lives in server/placement.py; admission (the
connection limit) in server/admission.py; this module keeps the loop, dispatch and shutdown.
"""

import contextlib
import gc
import itertools
import logging
import math
import multiprocessing
import os
import select
import signal
import time

from common.logs import event
from common.signals import StopFlag
from server.admission import Admission, connection_limit, open_listener
from server.barrier import ReplicaBarrier
from server.config import ServerConfig
from server.conn_state import TurnEnd
from server.handoff import ChannelClosed, Ticket, receive_outcome, send_ticket
from server.keys import AgencyKeys
from server.meters import REPLICA_DOWN, REPLICA_RUNNING, SERVING, STOPPING, Meters
from server.placement import Conn, ConnTable, Place
from server.pool import WorkerPool
from server.replicator import Replicator, restore_lost
from server.state import LotteryState, start_manager
from server.status.feed import Feed, start_status, stop_status
from server.tls.process import TerminatorProcess
from server.worker import WORKER_BOOT_ERROR
from storage import Rules, open_lottery
from storage.replica import Replica, replica_for
from transport.stream import drain

log = logging.getLogger(__name__)

# fork: workers start in milliseconds and inherit the storage lock; explicit because Python
# 3.14 changed the default start method on Linux.
START_METHOD = "fork"
TICK_S = 0.1  # how often timers (idle connections, held WINNERS) are looked at
MAX_LENT = 32  # connections lent to one worker for one turn at most
MAX_LENT_BYTES = 128 * 1024  # their unhandled bytes, so tickets never fill the channel
_MASKS = {
    Place.PARKED: select.EPOLLIN | select.EPOLLRDHUP,
    Place.HELD: select.EPOLLRDHUP,  # only a hang-up: its question is already known
}


class Acceptor:
    """Owns the listener, the connections, the workers and the Manager."""

    def __init__(self, config: ServerConfig, keys: AgencyKeys | None = None) -> None:
        self.config = config
        self.keys = keys
        self.ctx = multiprocessing.get_context(START_METHOD)
        self.epoll = select.epoll()
        self.table = ConnTable(
            config.idle_timeout_s,
            config.winners_wait_s,
            watch=lambda c: self.epoll.register(c.fd, _MASKS[c.place]),
            unwatch=lambda c: self.epoll.unregister(c.fd),
        )
        self.stopping = False
        self.exit_code = 0
        self.listeners: dict = {}  # fd -> listening socket (plaintext)
        self.tls: TerminatorProcess | None = None
        self.replica: Replica | None = None
        self.replicator: Replicator | None = None

    # --- start ------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (or a worker that cannot boot); return the exit code."""
        config = self.config
        max_connections, open_files = connection_limit(config.max_connections)
        self.meters = Meters(self.ctx, config.workers, config.agencies)
        # First: it answers /readyz 503 during recovery.
        self.status = start_status(self.ctx, config, self.meters, [self.epoll])
        if config.tls:  # before storage opens: a bad certificate stops the start here
            self.tls = TerminatorProcess(self.ctx, config, self.meters)
            self.tls.start([self.epoll])
            self.meters.set_tls(enabled=1, up=1)
        storage_lock = self.ctx.Lock()
        rules = Rules(
            lottery_id=config.lottery_id,
            agencies=config.agencies,
            winning_number=config.winning_number,
        )
        if config.replica_url:  # a lost bets.db comes back from the replica, before anything
            self.replica = replica_for(config.storage_dir, config.replica_url, config.lottery_id)
            restore_lost(config.storage_dir, self.replica)
        # Decided here, before any fork; it keeps no storage handle open for workers to inherit.
        lottery = open_lottery(config.storage_dir, rules, storage_lock)
        if config.replica_url:
            log_path = self.replica.config.with_name("litestream.log")
            self.replicator = Replicator(self.replica, config.replica_timeout_s, log_path)
            self.replicator.start()
            self.meters.set(replica=REPLICA_RUNNING)
        manager = start_manager(self.ctx, os.getpid())
        self.state = LotteryState(manager, self.ctx, set(lottery.finished), lottery.drawn)
        self.flag = StopFlag(extra_signals=(signal.SIGCHLD,))
        plain_port = config.plain_port if config.tls else config.server_port
        if plain_port:
            listener = open_listener(plain_port, config.server_listen_backlog)
            self.listeners[listener.fileno()] = listener
        self.admission = Admission(self.table, max_connections, self._close)
        barrier = None
        if config.replica_url:  # shared by every worker: concurrent commits share a sync
            barrier = ReplicaBarrier(
                self.ctx, self.replica, config.replica_timeout_s, config.replica_sync
            )
        worker_args = (
            config, storage_lock, self.state, self.keys, self.meters, barrier, os.getpid()
        )  # fmt: skip
        self.pool = WorkerPool(self.ctx, config.workers, worker_args,
                               on_spawn=lambda ch: self.epoll.register(ch.fileno(), select.EPOLLIN),
                               on_exit=lambda ch: self.epoll.unregister(ch.fileno()))  # fmt: skip
        # Workers are forked from here: keep the collector from touching (and so copying)
        # every inherited object in each of them.
        gc.freeze()
        self.pool.start(self._inherited)
        for fd in self.listeners:
            self.epoll.register(fd, select.EPOLLIN)
        if self.tls is not None:
            self.epoll.register(self.tls.fileno(), select.EPOLLIN)
        self.epoll.register(self.flag.wake_fd, select.EPOLLIN)
        log.info(event("listen", "success", port=config.server_port,
                       transport="tls" if config.tls else "plaintext",
                       backlog=config.server_listen_backlog, workers=config.workers,
                       max_connections=max_connections, open_files=open_files,
                       finished=len(self.state.finished()), drawn=self.state.drawn))  # fmt: skip
        if config.tls and config.plain_port:
            log.warning(event("listen", "success", port=config.plain_port, transport="plaintext",
                              warning="PLAIN_PORT speaks plaintext: bets sent there cross the "
                              "network in clear"))  # fmt: skip
        self.meters.set(phase=SERVING)
        self.feed = Feed(self.meters, self.table, self.pool, self.admission)
        try:
            self._serve()
        finally:
            self._shutdown(manager)
        return self.exit_code

    def _inherited(self) -> list:
        """What a newly forked worker must close: everything the acceptor holds open."""
        tls = [self.tls.channel] if self.tls is not None and self.tls.channel is not None else []
        return [*self.listeners.values(), *tls, self.epoll,
                *(c.sock for c in self.table.conns.values())]  # fmt: skip

    # --- the loop ---------------------------------------------------------------------

    def _serve(self) -> None:
        next_tick = time.monotonic()
        while not self.stopping or self._lingering():
            self._poll(max(0.0, next_tick - time.monotonic()))
            now = time.monotonic()
            if now >= next_tick:
                self._tick(now)
                next_tick = now + TICK_S
            self._dispatch()
            if self.flag.stopping and not self.stopping:
                self._begin_shutdown()

    def _poll(self, timeout: float) -> None:
        workers = self.pool.by_fd()
        for fd, _ in self.epoll.poll(timeout):
            if fd == self.flag.wake_fd:
                drain(fd)
                self._reap()
            elif fd in self.listeners:
                self.admission.accept(self.listeners[fd])
            elif self.tls is not None and self.tls.channel is not None and fd == self.tls.fileno():
                self._take_tls()
            elif fd in workers:
                self._finish_turn(workers[fd])
            elif (conn := self.table.polled.get(fd)) is not None:
                if conn.place is Place.HELD:  # only hang-ups are watched while held
                    log.debug(event("connection_closed", "success", peer=conn.state.peer,
                                    reason="peer left"))  # fmt: skip
                    self._close(conn)
                else:
                    self.table.queue(conn)

    def _tick(self, now: float) -> None:
        for conn in self.table.idle(now):
            error = f"idle for {self.config.idle_timeout_s}s"
            log.info(event("connection", "fail", agency=conn.state.agency, peer=conn.state.peer,
                           error=error))  # fmt: skip
            self._close(conn)
        for conn in self.table.due(now):
            self.table.queue(conn)
        self.admission.log_refusals(now)
        self.feed.publish()
        if not self.stopping:
            self.pool.restart(self._inherited)
            if self.tls is not None and self.tls.restart_due(now):
                self._restart_tls(now)
            if self.replicator is not None:
                self.replicator.poll(now)
                self.meters.set(
                    replica=REPLICA_RUNNING if self.replicator.running else REPLICA_DOWN
                )

    def _close(self, conn: Conn) -> None:
        """Out of the table and closed (a lent one only once its turn is over)."""
        self.table.close(conn)
        with contextlib.suppress(OSError):
            conn.sock.close()

    # --- the TLS terminator -----------------------------------------------------------

    def _take_tls(self) -> None:
        """Connections the terminator established: admitted like accepted ones."""
        try:
            taken = self.tls.take()
        except ChannelClosed:
            self._tls_died()
            return
        for sock, peer in taken:
            if self.stopping:  # established while the shutdown began: never admitted
                sock.close()
            else:
                self.admission.admit(sock, peer)

    def _tls_died(self) -> None:
        self.epoll.unregister(self.tls.fileno())
        self.meters.set_tls(up=0)  # /readyz: the lottery port does not answer
        self.tls.died(restart=not self.stopping)

    def _restart_tls(self, now: float) -> None:
        if self.tls.restart([*self._inherited(), *self.pool.channels()], now):
            self.meters.set_tls(up=1)
            self.epoll.register(self.tls.fileno(), select.EPOLLIN)

    # --- workers ----------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Lend queued connections to idle workers, first come first served. With more
        queued than idle workers, a worker gets several: their writes share one commit."""
        idle = self.pool.idle()
        while self.table.ready and idle:
            worker = idle.pop()
            share = min(MAX_LENT, math.ceil(len(self.table.ready) / (len(idle) + 1)))
            batch, size = [], 0
            for conn_id in itertools.islice(self.table.ready, share):
                if size >= MAX_LENT_BYTES:
                    break
                batch.append(self.table.conns[conn_id])
                size += len(batch[-1].state.buffer)
            for conn in batch:
                try:
                    send_ticket(worker.channel, Ticket(state=conn.state, lent_with=len(batch)),
                                conn.sock)  # fmt: skip
                except ChannelClosed:  # it died (reaped on SIGCHLD); the rest stay queued
                    break
                self.table.lend(conn)
                worker.conn_ids.add(conn.id)

    def _finish_turn(self, worker) -> None:
        try:
            outcome = receive_outcome(worker.channel)
        except ChannelClosed:
            return  # it died: _reap closes the connections it held
        conn_id = outcome.state.conn_id
        if conn_id not in worker.conn_ids:
            return
        worker.conn_ids.discard(conn_id)
        conn = self.table.conns.get(conn_id)
        if conn is None:  # closed at the end of shutdown's grace
            return
        previous = self.table.give_back(conn, outcome.state, outcome.active, time.monotonic())
        if previous is not None:
            self._take_over(previous, conn)
        if outcome.end is TurnEnd.CLOSE or conn.doomed:
            self._close(conn)
        elif self.stopping and not conn.state.half_received:
            self._close(conn)  # nothing half-received: nothing to finish
        elif outcome.end is TurnEnd.MORE:
            self.table.queue(conn)
        else:
            self.table.park(conn)
        self._release_held()

    def _release_held(self) -> None:
        """Once the draw happened, every held WINNERS is answered (the worker whose END ran
        the draw returns its turn right after, so this runs within milliseconds of it)."""
        if self.table.held and self.state.drawn:
            for conn in self.table.held_conns():
                self.table.queue(conn)

    def _take_over(self, previous: Conn, newer: Conn) -> None:
        log.info(event("takeover", "success", agency=newer.state.agency,
                       previous=previous.state.peer, peer=newer.state.peer))  # fmt: skip
        reason = "taken over by a newer connection"
        log.info(event("connection_closed", "success", peer=previous.state.peer, reason=reason))
        if previous.place is Place.LENT:
            previous.doomed = reason  # it finishes the message it is answering first
        else:
            self._close(previous)

    def _reap(self) -> None:
        for worker in self.pool.reap():
            for conn_id in worker.conn_ids:  # lent to it: their turn cannot be finished
                conn = self.table.conns.get(conn_id)
                if conn is None:
                    continue
                log.warning(event("connection", "fail", peer=conn.state.peer,
                                  error="its worker died"))  # fmt: skip
                self._close(conn)
            if worker.exitcode == WORKER_BOOT_ERROR and not self.stopping:
                # Its replacement would fail the same way, once a second, forever.
                log.error(event("server", "fail", error="a worker could not start "
                                "(see its line above); stopping"))  # fmt: skip
                self.exit_code = 1
                self._begin_shutdown()

    # --- shutdown ---------------------------------------------------------------------

    def _begin_shutdown(self) -> None:
        """Stop accepting; close every connection with nothing half-received at once."""
        self.stopping = True
        self.meters.set(phase=STOPPING)
        self._shutdown_started = time.monotonic()
        log.info(event("shutdown", "in_progress", signal=self.flag.name or "none"))
        for fd, listener in self.listeners.items():
            self.epoll.unregister(fd)
            listener.close()
        self.listeners.clear()
        if self.tls is not None:
            self.tls.stop_accepting()
        log.info(event("shutdown", "success", resource="listener"))
        closed = 0
        for conn in list(self.table.conns.values()):
            if conn.place is not Place.LENT and not conn.state.half_received:
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
        self.admission.log_refusals(time.monotonic(), final=True)
        killed = len(self.table.conns)
        for conn in list(self.table.conns.values()):
            self._close(conn)
        log.info(event("shutdown", "success", resource="connections", killed=killed))
        grace = max(0.5, self.config.shutdown_grace_s - (time.monotonic() - self._shutdown_started))
        workers_killed = self.pool.stop(grace)
        log.info(event("shutdown", "success", resource="workers", killed=workers_killed))
        if self.replicator is not None:  # every commit is made: the last sync holds them all
            self.replicator.stop()
        if self.tls is not None and self.tls.channel is not None:
            # Its connections are closed: each gets close_notify, the peer's is not waited for.
            self.epoll.unregister(self.tls.fileno())
            self.tls.stop(2.0)
            log.info(event("shutdown", "success", resource="tls"))
        manager.shutdown()
        log.info(event("shutdown", "success", resource="manager"))
        if stop_status(self.status):
            log.info(event("shutdown", "success", resource="status"))
        self.epoll.close()
        self.flag.close()
