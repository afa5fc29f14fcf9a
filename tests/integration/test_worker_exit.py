"""How a worker ends: a worker that cannot start stops the server instead of being respawned
forever; a channel closed under a worker at shutdown is a normal end, not a crash."""

import multiprocessing
import os
import socket

from protocol import Ping, encode
from scripts.lab.sample import mp_lock
from server.config import CONFIG_PATH, load_config
from server.conn_state import ConnState
from server.handoff import Ticket, channel_pair, send_ticket
from server.meters import Meters
from server.state import LotteryState, start_manager
from server.worker import run_worker
from storage import Rules, open_lottery


def test_a_worker_that_cannot_start_stops_the_server_with_a_clear_line(make_server):
    server = make_server(AGENCIES=2, LOTTERY_FAULT="not-a-fault-spec").start(wait=False)
    assert server.wait(30) == 1
    logs = server.logs()
    assert "action: worker | result: fail" in logs and "cannot start: LOTTERY_FAULT" in logs
    assert "action: server | result: fail | error: a worker could not start" in logs
    # Not respawned: one failure line per worker of the first start, no more.
    assert logs.count("cannot start") <= load_config(CONFIG_PATH, environ={}).workers
    assert "action: shutdown | result: success | resource: manager" in logs


def test_a_channel_closed_before_the_last_outcome_is_sent_is_a_normal_exit(tmp_path, capfd):
    ctx = multiprocessing.get_context("fork")
    config = load_config(CONFIG_PATH, environ={"AGENCIES": "2", "STORAGE_DIR": str(tmp_path)})
    lock = mp_lock()
    lottery = open_lottery(tmp_path, Rules(lottery_id="", agencies=2, winning_number=7574), lock)
    manager = start_manager(ctx, os.getpid())
    state = LotteryState(manager, ctx, set(lottery.finished), lottery.drawn)
    mine, theirs = channel_pair()
    worker = ctx.Process(
        target=run_worker,
        args=(theirs, 0, config, lock, state, None, Meters(ctx, 1, 2), None, os.getpid(), [mine]),
    )
    worker.start()
    theirs.close()
    client, served = socket.socketpair()
    client.sendall(encode(Ping()))
    send_ticket(mine, Ticket(state=ConnState(conn_id=1, peer="p"), lent_with=1), served)
    mine.close()  # the acceptor shutting down while the turn is served
    served.close()
    client.settimeout(10)
    assert client.recv(100) == b"RESULT=success,MESSAGE=PONG\n"  # the turn was served
    worker.join(10)
    assert worker.exitcode == 0
    assert "unexpected error" not in capfd.readouterr().err
    client.close()
    manager.shutdown()
