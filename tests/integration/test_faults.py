"""Exactly once under faults: whatever crashes in between, every bet an agency sent is stored
exactly once, the files agree, the draw is logged once, and every agency gets its winners."""

import os
import signal
import socket

import pytest

from protocol import Bets, Resume, encode
from scripts.lab.lottery import Lottery
from scripts.lab.processes import Peer, alive, children_of
from scripts.lab.sample import wait_for

SIZES = {1: 3000, 2: 2000, 3: 1000}


@pytest.fixture
def lottery(tmp_path, make_server):
    return Lottery(tmp_path, make_server, SIZES)


def family(server) -> set[int]:
    """The server's children (connections and the Manager) and their children."""
    found = children_of(server.proc.pid)
    for pid in list(found):
        found |= children_of(pid)
    return found


def assert_all_died(pids: set[int]) -> None:
    wait_for(lambda: not any(alive(p) for p in pids), what="the killed server's processes to die")


@pytest.mark.parametrize(
    "fault",
    [
        "csv_written:40:kill-server",  # bets in bets.csv, not committed
        "before_commit:40:kill-server",  # rows inserted, transaction open
        "committed:40:kill-server",  # stored, not acknowledged
        "before_draw_commit:1:kill-server",  # during the draw
        "draw_committed:1:kill-server",  # the draw stored, not logged nor answered
    ],
)
def test_server_sigkilled_at_a_point_then_restarted_loses_and_duplicates_nothing(lottery, fault):
    first = lottery.start_server(LOTTERY_FAULT=fault)
    lottery.start_clients()
    wait_for(lambda: lottery.received() > 10, what="ingestion under way")
    processes = family(first)
    assert first.wait(60) == -signal.SIGKILL
    assert_all_died(processes)
    lottery.start_server()
    lottery.wait_clients()
    lottery.verify()


def test_server_sigkilled_from_outside_mid_ingestion_then_restarted(lottery):
    first = lottery.start_server()
    lottery.start_clients()
    wait_for(lambda: lottery.received() > 150, what="ingestion under way")
    processes = family(first)
    assert len(processes) >= 2
    first.kill_hard()
    assert_all_died(processes)
    lottery.start_server()
    lottery.wait_clients()
    lottery.verify()


def test_a_client_sigkilled_mid_run_then_run_again_from_scratch(lottery):
    lottery.start_server()
    lottery.start_clients()
    victim = lottery.clients[1][0][0]
    # Its own progress: under load the other agencies may store 100 batches before it starts.
    wait_for(lambda: lottery.stored(1) > 100, what="agency 1's ingestion under way")
    victim.kill()
    victim.wait()
    lottery.start_client(1)
    lottery.wait_clients()
    lottery.verify()
    assert "position: 0\n" not in lottery.clients[1][1][1].read_text()


def test_a_connection_cut_in_the_middle_of_a_message_stores_nothing_of_it(lottery):
    lottery.start_server()
    peer = Peer(lottery.port)
    wire = encode(Bets(tuple(lottery.bets[1][:10]), 0))
    peer.send_raw(wire[: len(wire) // 2])
    peer.sock.shutdown(socket.SHUT_WR)
    assert peer.closed_by_server()
    assert Peer(lottery.port).request(Resume(1)).message == "0"
    lottery.start_clients()
    lottery.wait_clients()
    lottery.verify()


def test_server_sigterm_mid_ingestion_then_restarted(lottery):
    first = lottery.start_server()
    lottery.start_clients()
    wait_for(lambda: lottery.received() > 150, what="ingestion under way")
    first.send_signal(signal.SIGTERM)
    assert first.wait() == 0
    lottery.start_server()
    lottery.wait_clients()
    lottery.verify()


def test_a_write_error_refuses_that_batch_keeps_serving_and_the_retry_succeeds(lottery):
    # Fault passes are counted per worker: with one worker, its 5th store fails once.
    lottery.start_server(LOTTERY_FAULT="csv_written:5:enospc", WORKERS=1)
    lottery.start_clients()
    lottery.wait_clients()
    lottery.verify()
    server = lottery.servers[0]
    assert server.count("action: store | result: fail") == 1
    assert "No space left on device" in server.logs()
    logs = [runs[0][1].read_text() for runs in lottery.clients.values()]
    told = [log for log in logs if "action: apuesta_enviada | result: fail" in log]
    assert len(told) == 1 and "retry: True" in told[0]


def test_an_end_the_disk_cannot_record_is_answered_wait_and_the_client_retries(lottery):
    lottery.start_server(LOTTERY_FAULT="before_draw_commit:1:enospc", WORKERS=1)
    lottery.start_clients()
    lottery.wait_clients()
    lottery.verify()
    logs = [runs[0][1].read_text() for runs in lottery.clients.values()]
    told = [log for log in logs if "action: fin_apuestas | result: fail" in log]
    # Every END of the commit that failed is told (ENDs of several agencies may share it).
    assert told and all("the END was not recorded, send it again later" in t for t in told)


def test_an_error_right_after_the_draw_committed_still_releases_every_winners(lottery):
    """The draw is stored but its END is answered wait: the repeated END must tell every
    process that the draw happened (make chaos found WINNERS waiting for ever)."""
    lottery.start_server(LOTTERY_FAULT="draw_committed:1:enospc", WORKERS=1)
    lottery.start_clients()
    lottery.wait_clients(timeout=60)
    lottery.verify()
    logs = [runs[0][1].read_text() for runs in lottery.clients.values()]
    # Every END of the round that drew was answered wait (ENDs of one turn share a commit).
    assert sum("action: fin_apuestas | result: fail" in log for log in logs) >= 1


@pytest.mark.parametrize("damage", ["delete_db", "torn_csv_line", "short_csv"])
def test_files_damaged_between_runs_are_recovered_and_the_lottery_completes(lottery, damage):
    first = lottery.start_server()
    lottery.start_clients()
    wait_for(lambda: lottery.received() > 150, what="ingestion under way")
    first.send_signal(signal.SIGTERM)
    assert first.wait() == 0
    data = first.storage_dir
    if damage == "delete_db":
        for name in ("bets.db", "bets.db-wal", "bets.db-shm"):
            (data / name).unlink(missing_ok=True)
    elif damage == "torn_csv_line":
        with open(data / "bets.csv", "ab") as f:
            f.write("2,Juan,Pérez,3012".encode())
    else:
        size = (data / "bets.csv").stat().st_size
        os.truncate(data / "bets.csv", size - 500)
    second = lottery.start_server()
    expected = {
        "delete_db": "imported",
        "torn_csv_line": "unacknowledged bytes off the end",
        "short_csv": "rebuilt bets.csv",
    }[damage]
    assert "action: recovery | result: success | detail: " in second.logs()
    assert expected in second.logs()
    lottery.wait_clients()
    lottery.verify()


def test_a_newer_connection_for_the_same_agency_takes_over_and_nothing_is_stored_twice(lottery):
    lottery.start_server()
    old = Peer(lottery.port)
    # The old connection stored a first batch, then fell silent (its client thinks it is lost).
    assert old.request(Bets(tuple(lottery.bets[1][:10]), 0)).message == "10"
    lottery.start_clients()
    assert old.closed_by_server()
    lottery.wait_clients()
    lottery.verify()
    assert lottery.servers[0].count("action: takeover | result: success | agency: 1") == 1
    assert "taken over by a newer connection" in lottery.servers[0].logs()
