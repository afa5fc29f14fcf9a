"""Each deployment is its own lottery: a new LOTTERY_ID archives whatever is stored, the same
(or no) id continues it exactly once, other rules are never continued, and a server of zero
agencies runs, answers and stops cleanly."""

import collections
import json
import signal

import pytest

from protocol import NO_AGENCIES, Bets, End, Ping, Response, Winners
from scripts.lab.lottery import Lottery
from scripts.lab.processes import Peer, start_client, write_agency_csv
from scripts.lab.sample import make_bets, wait_for
from storage import load_bets, read_lottery

SIZES = {1: 600, 2: 400}


def stored_bets(data) -> dict[int, list]:
    found = collections.defaultdict(list)
    for bet in load_bets(data / "bets.csv"):
        found[bet.agency].append(bet)
    return dict(found)


def run_to_the_end(tmp_path, make_server, lottery_id: str, start: int) -> tuple:
    """A whole deployment of SIZES with new agency files; returns (server, its bets)."""
    server = make_server(AGENCIES=len(SIZES), LOTTERY_ID=lottery_id).start()
    bets = {a: make_bets(a, start, n, winners_every=50) for a, n in SIZES.items()}
    procs = []
    for agency, mine in bets.items():
        path = write_agency_csv(tmp_path / f"agency-{agency}-{lottery_id}.csv", mine)
        log = tmp_path / f"client{agency}-{lottery_id}.log"
        procs.append((start_client(server.port, agency, path, log), log, agency))
    for proc, log, agency in procs:
        assert proc.wait(60) == 0, log.read_text()
        winners = sum(1 for b in bets[agency] if b.number == 7574)
        assert f"cant_ganadores: {winners}\n" in log.read_text()
    assert server.stop() == 0
    assert "result: fail" not in server.logs()
    assert server.count("action: sorteo | result: success") == 1
    return server, bets


def archived_note(data) -> dict:
    (previous,) = (data / "previous").iterdir()
    return json.loads((previous / "lottery.json").read_text())


def test_an_interrupted_deployment_is_archived_by_the_next_one_which_runs_fresh(
    tmp_path, make_server
):
    first = make_server(AGENCIES=len(SIZES), LOTTERY_ID="first").start()
    clients = [
        start_client(
            first.port,
            agency,
            write_agency_csv(tmp_path / f"old-{agency}.csv", make_bets(agency, 0, n)),
            tmp_path / f"old-client{agency}.log",
            CLI_BATCH_MAXAMOUNT=5,
            CLI_LOOP_PERIOD="5ms",
        )
        for agency, n in SIZES.items()
    ]
    wait_for(lambda: first.count("apuesta_recibida | result: success") > 5, what="ingestion")
    first.kill_hard()
    for proc in clients:
        proc.kill()
        proc.wait()
    server, bets = run_to_the_end(tmp_path, make_server, "second", start=5000)
    assert stored_bets(server.storage_dir) == bets  # nothing of the interrupted one
    assert "reason: another deployment | was: not drawn" in server.logs()
    note = archived_note(server.storage_dir)
    assert (note["lottery_id"], note["agencies"], note["state"]) == ("first", 2, "not drawn")
    assert 0 < note["bets"] < sum(SIZES.values())


def test_a_drawn_lottery_whose_agencies_never_got_winners_is_archived_by_a_new_deployment(
    tmp_path, make_server
):
    first = make_server(AGENCIES=len(SIZES), LOTTERY_ID="first").start()
    for agency in SIZES:
        peer = Peer(first.port)
        assert peer.request(Bets(tuple(make_bets(agency, 0, 30)), 0)).result == "success"
        assert peer.request(End(agency)).result == "success"
        peer.close()
    wait_for(lambda: first.count("action: sorteo | result: success"), what="the draw")
    assert first.stop() == 0
    server, bets = run_to_the_end(tmp_path, make_server, "second", start=5000)
    assert stored_bets(server.storage_dir) == bets
    note = archived_note(server.storage_dir)
    assert note["state"] == "drawn, not every agency told" and note["bets"] == 60


@pytest.mark.parametrize("lose_db", [False, True], ids=["files kept", "bets.db deleted"])
def test_the_same_id_restarted_mid_stream_continues_exactly_once(tmp_path, make_server, lose_db):
    lottery = Lottery(tmp_path, make_server, {1: 1500, 2: 1000})
    first = lottery.start_server(LOTTERY_ID="same")
    lottery.start_clients()
    wait_for(lambda: lottery.received() > 20, what="ingestion under way")
    first.kill_hard()
    if lose_db:  # rebuilt from bets.csv: the lost record is adopted, not taken for another
        for name in ("bets.db", "bets.db-wal", "bets.db-shm"):
            (tmp_path / "data" / name).unlink(missing_ok=True)
    second = lottery.start_server(LOTTERY_ID="same")
    lottery.wait_clients()
    lottery.verify()
    assert "action: new_lottery" not in second.logs()
    assert "state: continued" in second.logs()
    assert not (tmp_path / "data" / "previous").exists()


def test_the_same_id_with_other_agencies_before_the_draw_exits_2_naming_both(tmp_path, make_server):
    first = make_server(AGENCIES=2, LOTTERY_ID="L").start()
    peer = Peer(first.port)
    assert peer.request(Bets(tuple(make_bets(1, 0, 10)), 0)).result == "success"
    peer.close()
    assert first.stop() == 0
    again = make_server(AGENCIES=3, LOTTERY_ID="L").start(wait=False)
    assert again.wait(30) == 2
    (line,) = [x for x in again.logs().splitlines() if "result: fail" in x]
    assert "action: lottery | result: fail | error: the stored lottery L was started for" in line
    assert "AGENCIES=2 WINNING_NUMBER=7574" in line and "says AGENCIES=3" in line
    assert "python -m storage new-lottery" in line
    # Nothing was touched: the old rules continue it.
    assert read_lottery(tmp_path / "data").bets == 10
    make_server(AGENCIES=2, LOTTERY_ID="L").start().stop()
    assert read_lottery(tmp_path / "data").agencies == 2


def test_without_an_id_a_complete_lottery_is_continued_and_keeps_answering(tmp_path, make_server):
    _, bets = run_to_the_end(tmp_path, make_server, "", start=0)
    again = make_server(AGENCIES=len(SIZES)).start()
    peer = Peer(again.port)
    answer = peer.request(Winners(1))
    assert answer.result == "success"
    assert answer.message == str(sum(1 for b in bets[1] if b.number == 7574))
    refused = peer.request(Bets(tuple(make_bets(1, 9000, 1)), None))
    assert refused.result == "fail" and "python -m storage new-lottery" in refused.message
    peer.close()
    assert again.stop() == 0
    assert "action: new_lottery" not in again.logs()
    assert stored_bets(tmp_path / "data") == bets


def test_zero_agencies_run_answer_ping_refuse_bets_and_stop_cleanly(tmp_path, make_server):
    server = make_server(AGENCIES=0, LOTTERY_ID="empty").start()
    peer = Peer(server.port)
    assert peer.request(Ping()) == Response("success", "PONG")
    assert peer.request(Bets(tuple(make_bets(1, 0, 3)), 0)) == Response("fail", NO_AGENCIES)
    assert peer.request(End(1)) == Response("fail", NO_AGENCIES)
    peer.close()
    assert server.stop(signal.SIGTERM) == 0
    logs = server.logs()
    assert "WARNING  action: config | result: success | warning: AGENCIES is 0" in logs
    assert "action: sorteo" not in logs
    assert read_lottery(tmp_path / "data").bets == 0


@pytest.mark.parametrize("agencies", [1, 3])
def test_a_new_id_after_a_complete_lottery_begins_anew_with_its_own_agency_count(
    tmp_path, make_server, agencies
):
    """The suite's failure: a drawn 1-agency lottery must not be continued by a 3-agency
    deployment (nor a 3-agency one by a 1-agency deployment)."""
    first = make_server(AGENCIES=agencies, LOTTERY_ID="a").start()
    peers = {agency: Peer(first.port) for agency in range(1, agencies + 1)}
    for agency, peer in peers.items():
        assert peer.request(Bets(tuple(make_bets(agency, 0, 5)), 0)).result == "success"
        assert peer.request(End(agency)).result == "success"
    for agency, peer in peers.items():  # after the last END: drawn, each agency told
        assert peer.request(Winners(agency)).result == "success"
        peer.close()
    assert first.stop() == 0
    other = 4 - agencies  # 3 after 1, 1 after 3
    second = make_server(AGENCIES=other, LOTTERY_ID="b").start()
    assert "reason: another deployment | was: complete" in second.logs()
    peer = Peer(second.port)
    assert peer.request(Bets(tuple(make_bets(1, 100, 5)), 0)) == Response("success", "5")
    peer.close()
    assert second.stop() == 0
    assert read_lottery(tmp_path / "data").agencies == other
