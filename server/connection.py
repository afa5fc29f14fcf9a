"""A child process serving one connection until EOF, idle timeout or shutdown."""

import contextlib
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass

from common.logs import event
from common.signals import StopFlag, die_with_parent, reset_signals
from protocol import (
    FAIL,
    Bets,
    MessageTooLarge,
    ProtocolError,
    Response,
    decode_request,
    encode,
    peek_bet_count,
)
from server.config import ServerConfig
from server.faults import fault_hook
from server.session import Session
from server.state import LotteryState
from storage import BetStore
from transport import ConnectionClosed, Interrupted, MessageStream

log = logging.getLogger(__name__)


def serve_connection(
    sock: socket.socket,
    peer: str,
    config: ServerConfig,
    storage_lock,
    state: LotteryState,
    parent_pid: int,
    inherited: list[socket.socket],
) -> None:
    """Child process entry: everything it needs comes in as arguments, nothing via globals."""
    reset_signals()
    die_with_parent(parent_pid)
    for other in inherited:  # the listener: only the acceptor may accept
        other.close()
    # SIGUSR1: a newer connection took this agency over.
    flag = StopFlag(stop_signals=(signal.SIGTERM, signal.SIGINT, signal.SIGUSR1))
    code = 0
    try:
        fault = fault_hook(os.environ.get("LOTTERY_FAULT"), parent_pid)
        store = BetStore(config.storage_dir, storage_lock, fault=fault)
    except Exception as exc:
        log.error(event("connection", "fail", peer=peer, error=f"cannot open storage: {exc}"))
        sock.close()
        sys.exit(1)
    try:
        reason = _converse(sock, config, store, state, flag)
        if flag.signum == signal.SIGUSR1:
            log.info(
                event(
                    "connection_closed",
                    "success",
                    peer=peer,
                    reason="taken over by a newer connection",
                )
            )
        else:
            log.debug(event("connection_closed", "success", peer=peer, reason=reason))
    except Exception as exc:  # a bug or a broken disk: report it once, never a traceback
        log.error(event("connection", "fail", peer=peer, error=repr(exc)))
        code = 1
    finally:
        # The Manager may already be gone if the acceptor died; nothing left to release then.
        with contextlib.suppress(OSError, EOFError):
            state.release(os.getpid())
        store.close()
        sock.close()
        flag.close()
    sys.exit(code)


GROUP_LIMIT = 16  # messages handled together at most


@dataclass(frozen=True)
class Undecodable:
    """A line that is not a message, kept in its place among the decoded ones."""

    line: bytes
    error: ProtocolError

    def log(self, agency: int | None) -> None:
        count = peek_bet_count(self.line)
        if count is not None:
            log.info(event("apuesta_recibida", "fail", cantidad=count, error=self.error))
        else:
            log.info(event("mensaje", "fail", agency=agency, error=self.error))


def _decoded(line: bytes):
    try:
        return decode_request(line)
    except ProtocolError as exc:
        return Undecodable(line, exc)


def _converse(sock, config: ServerConfig, store, state, flag: StopFlag) -> str:
    """Answer messages one by one; return why the conversation ended."""
    stream = MessageStream(sock, wake_fd=flag.wake_fd)
    session = Session(config, store, state, lambda: flag.stopping)
    # Bounds sendall() to a peer that stops reading; reads have their own deadline.
    sock.settimeout(config.idle_timeout_s)
    idle = config.idle_timeout_s
    try:
        while not flag.stopping:
            try:
                # A message already begun is finished even during shutdown.
                line = stream.read_line(idle, stop=lambda partial: flag.stopping and not partial)
            except ConnectionClosed:
                return "peer closed"
            except Interrupted:
                return "shutdown"
            except TimeoutError:
                log.info(
                    event("connection", "fail", agency=session.agency, error=f"idle for {idle}s")
                )
                return "idle timeout"
            except MessageTooLarge as exc:
                stream.send(encode(Response(FAIL, str(exc))))
                log.info(event("mensaje", "fail", agency=session.agency, error=exc))
                return "message too large"
            except ProtocolError as exc:  # EOF in the middle of a message
                log.info(event("mensaje", "fail", agency=session.agency, error=exc))
                return "cut message"
            # A pipelining client may have sent more: take what has arrived, so its batches
            # are stored together (one lock, one write, one commit for the group).
            requests = [_decoded(line) for line in [line, *stream.ready_lines(GROUP_LIMIT - 1)]]
            i = 0
            while i < len(requests):
                request = requests[i]
                if isinstance(request, Bets):
                    j = i
                    while j < len(requests) and isinstance(requests[j], Bets):
                        j += 1
                    answers = session.handle_bets(requests[i:j])
                    stream.send(b"".join(encode(answer) for answer in answers))
                    i = j
                    continue
                i += 1
                if isinstance(request, Undecodable):
                    request.log(session.agency)
                    stream.send(encode(Response(FAIL, str(request.error))))
                    continue
                response = session.handle(request)
                if response is None:
                    return "shutdown"
                stream.send(encode(response))
        return "shutdown"
    except OSError as exc:  # reset by the peer, or it stopped reading
        log.info(event("connection", "fail", agency=session.agency, error=exc))
        return "connection error"
