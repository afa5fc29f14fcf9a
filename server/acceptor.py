"""The acceptor (arbiter): accepts, hands each connection to a child process, reaps, and
shuts everything down in order."""

import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import socket
import time
from multiprocessing.managers import SyncManager

from common.logs import event
from common.signals import StopFlag, die_with_parent, reset_signals
from protocol import FAIL, Response, encode
from server.config import ServerConfig
from server.connection import serve_connection
from server.session import announce_draw
from server.state import LotteryState
from storage import BetStore, recover
from transport.stream import drain, wait_readable

log = logging.getLogger(__name__)

# fork: a child per connection must start in milliseconds; explicit because Python 3.14
# changed the default start method on Linux.
START_METHOD = "fork"


def _manager_init(parent_pid: int) -> None:
    reset_signals()
    # Ctrl-C reaches the whole process group: the Manager must outlive the children it
    # serves and stop only when the acceptor shuts it down (or dies).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_parent(parent_pid)


class Acceptor:
    """Owns the listener, the children, the Manager and the parent's storage handle."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.ctx = multiprocessing.get_context(START_METHOD)
        self.children: dict[int, multiprocessing.process.BaseProcess] = {}

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; return the exit code."""
        config = self.config
        recover(config.storage_dir)
        storage_lock = self.ctx.Lock()
        store = BetStore(config.storage_dir, storage_lock)
        manager = SyncManager(ctx=self.ctx)
        manager.start(_manager_init, (os.getpid(),))
        state = LotteryState(manager, self.ctx, store.finished_agencies(), store.draw() is not None)
        if store.draw_if_complete(config.agencies, config.winning_number):
            state.mark_drawn()
        announce_draw(store)
        flag = StopFlag(extra_signals=(signal.SIGCHLD,))
        listener = self._listen()
        # Children are forked from here: keep the collector from touching (and so copying)
        # every inherited object in each of them.
        gc.freeze()
        log.info(
            event(
                "listen",
                "success",
                port=config.server_port,
                finished=len(state.finished()),
                drawn=state.drawn,
            )
        )
        try:
            self._serve(listener, flag, storage_lock, state)
        finally:
            self._shutdown(listener, flag, manager, store)
        return 0

    def _listen(self) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # A restarted server binds the same port at once, despite TIME_WAIT connections.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("", self.config.server_port))
        listener.listen(self.config.server_listen_backlog)
        listener.setblocking(False)
        return listener

    def _serve(self, listener, flag: StopFlag, storage_lock, state: LotteryState) -> None:
        while not flag.stopping:
            ready = wait_readable([listener.fileno(), flag.wake_fd], None)
            if flag.wake_fd in ready:
                drain(flag.wake_fd)
            for pid in self._reap():
                state.release(pid)  # a child killed before it could say it ended
            if listener.fileno() in ready and not flag.stopping:
                self._accept(listener, storage_lock, state)

    def _accept(self, listener, storage_lock, state) -> None:
        try:
            conn, address = listener.accept()
        except (BlockingIOError, ConnectionAbortedError):
            return
        peer = f"{address[0]}:{address[1]}"
        if len(self.children) >= self.config.max_connections:
            log.warning(event("accept", "fail", peer=peer, error="server busy"))
            conn.setblocking(False)
            with contextlib.suppress(OSError):
                conn.send(encode(Response(FAIL, "server busy")))
            conn.close()
            return
        conn.setblocking(True)
        child = self.ctx.Process(
            target=serve_connection,
            args=(conn, peer, self.config, storage_lock, state, os.getpid(), [listener]),
            name=f"conn-{peer}",
        )
        child.start()
        conn.close()  # the child has its own copy
        self.children[child.pid] = child
        log.debug(event("accept", "success", peer=peer, connections=len(self.children)))

    def _reap(self) -> list[int]:
        """Collect finished children; return the pids of those that did not exit cleanly."""
        # Per child, not waitpid(-1): multiprocessing polls its own children by pid, and the
        # Manager is a child too.
        unclean = []
        for pid, child in list(self.children.items()):
            if child.exitcode is not None:
                if child.exitcode != 0:
                    log.warning(event("connection", "fail", pid=pid, exitcode=child.exitcode))
                    unclean.append(pid)
                child.close()
                del self.children[pid]
        return unclean

    def _shutdown(self, listener, flag: StopFlag, manager, store: BetStore) -> None:
        log.info(event("shutdown", "in_progress", signal=flag.name or "none"))
        listener.close()
        log.info(event("shutdown", "success", resource="listener"))
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.config.shutdown_grace_s
        while self.children and time.monotonic() < deadline:
            ready = wait_readable([flag.wake_fd], min(0.05, deadline - time.monotonic()))
            if ready:
                drain(flag.wake_fd)
            self._reap()
        killed = len(self.children)
        for child in self.children.values():
            child.kill()
            child.join()
        self._reap()
        log.info(event("shutdown", "success", resource="connections", killed=killed))
        manager.shutdown()
        log.info(event("shutdown", "success", resource="manager"))
        store.close()
        log.info(event("shutdown", "success", resource="storage"))
        flag.close()
