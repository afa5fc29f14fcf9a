"""The agency client as a real process against a real server."""

import signal

import pytest

from scripts.lab.processes import free_port, start_client, write_agency_csv
from scripts.lab.sample import make_bets, wait_for
from storage import load_bets
from storage.inspection import check


@pytest.fixture
def files(tmp_path):
    return tmp_path


def stored_of(server, agency):
    return [b for b in load_bets(server.storage_dir / "bets.csv") if b.agency == agency]


def test_a_file_of_991_bets_in_batches_of_10_stores_991(make_server, files):
    server = make_server(AGENCIES=1).start()
    bets = make_bets(1, 0, 991, winners_every=100)
    data = write_agency_csv(files / "agency-1.csv", bets)
    client = start_client(server.port, 1, data, files / "c1.log", CLI_BATCH_MAXAMOUNT=10)
    assert client.wait(60) == 0
    assert stored_of(server, 1) == bets
    assert server.count("action: apuesta_recibida | result: success | cantidad: 10") == 99
    assert server.count("action: apuesta_recibida | result: success | cantidad: 1\n") == 1
    log = (files / "c1.log").read_text()
    assert "action: consulta_ganadores | result: success | cant_ganadores: 10" in log
    assert "action: summary | result: success | agency: 1 | bets: 991 | sent: 991" in log


def test_rejected_rows_go_to_the_rejects_file_and_the_rest_is_stored(make_server, files):
    server = make_server(AGENCIES=1).start()
    bets = make_bets(1, 0, 50)
    data = write_agency_csv(
        files / "agency-1.csv",
        bets,
        ("Ana,Gómez,12x,1990-01-01,1", "too,few", "A,B,1,1990-01-01,10000"),
    )
    rejects = files / "rejects" / "r1.csv"
    client = start_client(server.port, 1, data, files / "c1.log", CLI_REJECTS_PATH=rejects)
    assert client.wait(60) == 0
    assert stored_of(server, 1) == bets
    lines = rejects.read_text().splitlines()
    assert len(lines) == 4 and lines[1].startswith("51,DOCUMENT '12x' is not numeric")
    assert "rejected: 3" in (files / "c1.log").read_text()


def test_a_server_restart_mid_run_ends_with_exactly_the_files_bets(make_server, files):
    server = make_server(AGENCIES=2).start()
    bets = {a: make_bets(a, 0, 6000, winners_every=500) for a in (1, 2)}
    clients = [
        start_client(
            server.port, a, write_agency_csv(files / f"agency-{a}.csv", bets[a]), files / f"c{a}.log",
            CLI_BATCH_MAXAMOUNT=10,
        )
        for a in (1, 2)
    ]  # fmt: skip
    wait_for(lambda: server.count("apuesta_recibida") > 100, what="ingestion under way")
    server.kill_hard()
    restarted = make_server(AGENCIES=2, port=server.port).start()
    for client in clients:
        assert client.wait(120) == 0
    for a in (1, 2):
        assert stored_of(restarted, a) == bets[a]
        assert f"cant_ganadores: {6000 // 500}" in (files / f"c{a}.log").read_text()
    assert check(restarted.storage_dir)[0]
    assert restarted.count("action: sorteo | result: success") == 1
    # The restart really fell mid-run: clients resumed from a non-zero position.
    logs = "".join((files / f"c{a}.log").read_text() for a in (1, 2))
    assert "action: resume | result: success | position: 0\n" in logs
    assert logs.count("action: resume | result: success") > 2


def test_a_client_killed_and_rerun_from_scratch_stores_nothing_twice(make_server, files):
    server = make_server(AGENCIES=1).start()
    bets = make_bets(1, 0, 5000)
    data = write_agency_csv(files / "agency-1.csv", bets)
    first = start_client(server.port, 1, data, files / "c1.log", CLI_BATCH_MAXAMOUNT=10)
    wait_for(lambda: server.count("apuesta_recibida") > 50, what="ingestion under way")
    first.kill()
    first.wait()
    second = start_client(server.port, 1, data, files / "c1b.log", CLI_BATCH_MAXAMOUNT=10)
    assert second.wait(60) == 0
    assert stored_of(server, 1) == bets
    assert check(server.storage_dir)[0]
    assert "action: resume | result: success | position: 0\n" not in (files / "c1b.log").read_text()


def test_a_client_started_before_the_server_waits_for_it(make_server, files):
    port = free_port()
    bets = make_bets(1, 0, 20)
    data = write_agency_csv(files / "agency-1.csv", bets)
    client = start_client(port, 1, data, files / "c1.log")
    wait_for(
        lambda: "action: connect | result: fail" in (files / "c1.log").read_text(),
        what="a refused connect",
    )
    server = make_server(AGENCIES=1, port=port).start()
    assert client.wait(60) == 0
    assert stored_of(server, 1) == bets


def test_sigterm_mid_run_exits_0_and_logs_the_closes(make_server, files):
    server = make_server(AGENCIES=1).start()
    data = write_agency_csv(files / "agency-1.csv", make_bets(1, 0, 20000))
    client = start_client(server.port, 1, data, files / "c1.log", CLI_BATCH_MAXAMOUNT=5)
    wait_for(lambda: server.count("apuesta_recibida") > 20, what="ingestion under way")
    client.send_signal(signal.SIGTERM)
    assert client.wait(30) == 0
    log = (files / "c1.log").read_text()
    assert "action: shutdown | result: success | resource: socket" in log
    assert "action: shutdown | result: success | resource: file" in log
    assert "Traceback" not in log and "action: summary" not in log
    assert check(server.storage_dir)[0]


def test_a_refused_batch_fails_the_run_with_exit_1(make_server, files):
    server = make_server(AGENCIES=1).start()
    data = write_agency_csv(files / "agency-1.csv", make_bets(1, 0, 20))
    client = start_client(server.port, 2, data, files / "c2.log")
    assert client.wait(60) == 1
    assert "action: run | result: fail" in (files / "c2.log").read_text()


def test_an_unreachable_server_fails_after_retry_max_seconds(files):
    data = write_agency_csv(files / "agency-1.csv", make_bets(1, 0, 2))
    client = start_client(free_port(), 1, data, files / "c1.log", CLI_RETRY_MAXSECONDS=0.3)
    assert client.wait(30) == 1
    assert "cannot reach" in (files / "c1.log").read_text()


def test_a_missing_file_exits_2_with_a_clear_line(files):
    client = start_client(free_port(), 1, files / "nope.csv", files / "c1.log")
    assert client.wait(30) == 2
    assert "data.path (CLI_DATA_PATH): no file at" in (files / "c1.log").read_text()


def test_a_bad_config_value_exits_2_naming_the_key(files):
    client = start_client(
        free_port(), 1, files / "x.csv", files / "c1.log", CLI_BATCH_MAXAMOUNT="0"
    )
    assert client.wait(30) == 2
    assert "batch.maxAmount (CLI_BATCH_MAXAMOUNT)" in (files / "c1.log").read_text()
