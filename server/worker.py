"""A worker process: started ahead of need, it serves turns of connections the acceptor lends
it, one at a time, until the acceptor closes its channel.

Every worker ends through run_worker's one exit: 0 when the acceptor closed its channel (at
shutdown, even in the middle of a turn) or sent SIGTERM; WORKER_BOOT_ERROR when it could not
start, its storage say, for a replacement would fail the same way (the acceptor stops the
server); 1 on a bug (logged with its traceback; the acceptor replaces it).
"""

import contextlib
import logging
import os
import signal
import sys

from common.logs import event
from common.signals import StopFlag, die_with_parent, name_process, reset_signals
from server.config import ServerConfig
from server.conn_state import TurnEnd
from server.connection import serve_turns
from server.faults import fault_hook
from server.handoff import ChannelClosed, Outcome, Ticket, receive_ticket, send_outcome
from server.meters import Meters
from server.session import Session, commit_writes
from server.state import LotteryState
from storage import BetStore, StorageError
from transport.stream import drain, wait_readable

log = logging.getLogger(__name__)

WORKER_BOOT_ERROR = 3  # gunicorn's name and number for a worker that cannot start


def run_worker(
    channel,
    slot: int,
    config: ServerConfig,
    storage_lock,
    state: LotteryState,
    keys,
    meters: Meters,
    barrier,
    parent_pid: int,
    inherited: list,
) -> None:
    """Worker process entry: everything it needs comes in as arguments, nothing via globals."""
    reset_signals()
    die_with_parent(parent_pid)
    name_process("lottery-worker")
    # Ctrl-C reaches the whole process group: the acceptor decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for other in inherited:  # the listener, parked connections, other workers' channels
        with contextlib.suppress(OSError):
            other.close()
    flag = StopFlag(stop_signals=(signal.SIGTERM,))
    try:
        fault = fault_hook(os.environ.get("LOTTERY_FAULT"), parent_pid)
        store = BetStore(
            config.storage_dir,
            storage_lock,
            fault=fault,
            busy_timeout_s=config.db_busy_timeout_s,
            checkpoints=not config.replica_url,  # Litestream's job when it replicates
        )
    except Exception as exc:
        log.error(event("worker", "fail", pid=os.getpid(), error=f"cannot start: {exc}"))
        sys.exit(WORKER_BOOT_ERROR)
    code = 0
    try:
        _serve(channel, config, store, state, keys, meters.worker(slot), barrier, flag)
    except Exception:
        log.exception(event("worker", "fail", pid=os.getpid(), error="unexpected error"))
        code = 1
    finally:
        store.close()
        channel.close()
        flag.close()
    sys.exit(code)


def _serve(channel, config, store, state, keys, meter, barrier, flag: StopFlag) -> None:
    """Turns until the acceptor closes the channel, or SIGTERM arrives between two turns."""

    def session_for(ticket: Ticket) -> Session:
        return Session(config, store, state, keys, ticket.state, meter)

    def commit(writes):
        return commit_writes(writes, config, store, state, meter, barrier)

    def deliver(agencies: list[int]) -> None:
        try:
            store.record_deliveries(agencies)
        except StorageError as exc:  # only the "complete" of stats and archive notes is lost
            log.warning(event("delivery", "fail", agencies=len(agencies), error=exc))

    while not flag.stopping:
        ready = wait_readable([channel.fileno(), flag.wake_fd], None)
        if flag.wake_fd in ready:
            drain(flag.wake_fd)
        if channel.fileno() not in ready:
            continue
        lent: list = []
        try:
            lent.append(receive_ticket(channel))
            while len(lent) < lent[0][0].lent_with:
                lent.append(receive_ticket(channel))
        except ChannelClosed:
            for _, sock in lent:
                sock.close()
            return
        try:
            for _, sock in lent:
                sock.settimeout(config.idle_timeout_s)  # bounds sendall to a peer not reading
            lent_socks = [(sock, ticket) for ticket, sock in lent]
            outcomes = serve_turns(lent_socks, session_for, commit, deliver)
        except BaseException:
            # The connections go with the bug; the acceptor must still hear of them.
            with contextlib.suppress(ChannelClosed):
                for ticket, _ in lent:
                    closed = Outcome(state=ticket.state, end=TurnEnd.CLOSE, active=False)
                    send_outcome(channel, closed)
            raise
        finally:
            for _, sock in lent:
                sock.close()
        try:
            for outcome in outcomes:
                send_outcome(channel, outcome)
        except ChannelClosed:  # the acceptor is shutting down: nobody to tell, a normal end
            return
