"""More agencies than connection slots or workers: nobody starves, busy answers are paced,
parked and held connections cost no process and close at SIGTERM."""

import os
import re
import signal
from pathlib import Path

from protocol import Bets, End, Ping, Resume, Winners, encode
from scripts.lab.lottery import Lottery
from scripts.lab.processes import (
    Peer,
    children_of,
    served_peer,
    start_client,
    write_agency_csv,
)
from scripts.lab.sample import make_bets, wait_for


def test_thirty_agencies_through_four_slots_and_two_workers_all_get_their_winners(
    tmp_path, make_server
):
    lottery = Lottery(tmp_path, make_server, dict.fromkeys(range(1, 31), 60))
    lottery.start_server(MAX_CONNECTIONS=4, WORKERS=2, WINNERS_WAIT_S=60)
    lottery.start_clients(CLI_RETRY_MAXSECONDS=120)
    lottery.wait_clients(timeout=180)
    lottery.verify()  # every bet once, one draw, each agency its own winners


def test_connections_waiting_between_messages_hold_no_process(make_server):
    server = make_server(AGENCIES=40, WORKERS=2).start()
    workers_and_manager = len(children_of(server.proc.pid))
    peers = [Peer(server.port) for _ in range(40)]
    for agency, peer in enumerate(peers, 1):
        assert peer.request(Resume(agency)).message == "0"
    assert len(children_of(server.proc.pid)) == workers_and_manager == 3


def test_a_busy_answer_leads_to_paced_retries_within_retry_max_seconds(tmp_path, make_server):
    server = make_server(AGENCIES=1, MAX_CONNECTIONS=1).start()
    blocker = wait_for(lambda: served_peer(server.port, Ping()), what="the blocker admitted")
    blocker.send_raw(b"RESUME,AGEN")  # half a message: its slot is never given away
    data = write_agency_csv(tmp_path / "agency-1.csv", make_bets(1, 0, 5))
    client = start_client(server.port, 1, data, tmp_path / "c1.log", CLI_RETRY_MAXSECONDS=2.5)
    assert client.wait(60) == 1
    log = (tmp_path / "c1.log").read_text()
    assert "gave up after 2.5s of retries; last error: server busy" in log
    pauses = [float(x) for x in re.findall(r"error: server busy \| retry_in: ([0-9.]+)s", log)]
    # The server's hint is 1 s: a client that honours it tries about three times in 2.5 s,
    # one that loops would try thousands of times.
    assert 1 <= len(pauses) <= 4
    assert all(p >= 1.0 for p in pauses[:-1])
    blocker.close()
    assert server.stop() == 0
    refusals = re.findall(r"action: accept \| result: fail \| error: server busy \| refused: (\d+)",
                          server.logs())  # fmt: skip
    # One line per interval with a count (the first tries to place the blocker count too).
    assert len(refusals) <= 2 and len(pauses) <= sum(map(int, refusals)) <= 10


def test_sigterm_closes_parked_and_held_connections_at_once(make_server):
    server = make_server(AGENCIES=2, WINNERS_WAIT_S=60, SHUTDOWN_GRACE_S=30).start()
    idle = Peer(server.port)
    assert idle.request(Resume(2)).message == "0"
    held = Peer(server.port)
    assert held.request(Bets(tuple(make_bets(1, 0, 3)), 0)).message == "3"
    assert held.request(End(1)).result == "success"
    held.send_raw(encode(Winners(1)))  # held until the draw, which never comes
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=20) == 0
    assert idle.closed_by_server() and held.closed_by_server()
    assert "action: shutdown | result: success | resource: connections | killed: 0" in (
        server.logs()
    )


def test_a_killed_worker_is_replaced_and_the_others_keep_serving(make_server):
    server = make_server(AGENCIES=2, WORKERS=2).start()
    peer = Peer(server.port)
    assert peer.request(Resume(1)).message == "0"
    family = children_of(server.proc.pid)
    workers = [pid for pid in family if b"lottery-worker" in _comm(pid)]
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    wait_for(lambda: "action: worker | result: fail" in server.logs(), what="the death logged")
    wait_for(
        lambda: (
            len([p for p in children_of(server.proc.pid) if b"lottery-worker" in _comm(p)]) == 2
        ),
        what="a replacement worker",
    )
    for _ in range(10):  # whichever worker gets it, every message is answered
        assert Peer(server.port).request(Resume(2)).message == "0"
    assert server.stop() == 0


def _comm(pid: int) -> bytes:
    """The kernel's name of a process (workers name themselves lottery-worker)."""
    try:
        return Path(f"/proc/{pid}/comm").read_bytes()
    except OSError:
        return b""


def test_a_worker_dying_mid_turn_closes_only_its_connections(make_server):
    server = make_server(AGENCIES=2, WORKERS=1, LOTTERY_FAULT="before_commit:1:kill-worker").start()
    victim = Peer(server.port)
    victim.send_raw(encode(Bets(tuple(make_bets(1, 0, 2)), 0)))
    assert victim.closed_by_server()
    wait_for(lambda: "error: its worker died" in server.logs(), what="the lost turn logged")
    other = wait_for(lambda: served_peer(server.port, Resume(1)), what="a replacement worker")
    assert other.request(Resume(1)).message == "0"  # nothing of the cut turn was stored
    assert server.stop() == 0
