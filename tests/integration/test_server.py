"""The server as a real process on 127.0.0.1."""

import signal
import socket
import sqlite3
import threading

import pytest

from protocol import Bets, End, Ping, Resume, Winners, encode, encode_bet
from scripts.lab.lottery import Lottery
from scripts.lab.processes import Peer, alive, children_of, served_peer
from scripts.lab.sample import make_bets, wait_for
from storage import load_bets
from storage.inspection import check
from transport import ConnectionClosed

WIN = 10  # every 10th bet of the helpers' data wins when asked for


def send_all(port, agency, count, batch=25, seq=True, winners_every=WIN):
    peer = Peer(port)
    bets = make_bets(agency, 0, count, winners_every=winners_every)
    for start in range(0, count, batch):
        answer = peer.request(Bets(tuple(bets[start : start + batch]), start if seq else None))
        assert answer.result == "success", answer
    return peer, bets


def expected_winners(bets):
    return tuple(b.document for b in bets if b.number == 7574)


def test_happy_path_three_agencies_each_get_only_their_winners(make_server):
    server = make_server(AGENCIES=3).start()
    peers = {}
    for agency, count in ((1, 120), (2, 75), (3, 31)):
        peers[agency] = send_all(server.port, agency, count)
    for agency, (peer, _) in peers.items():
        assert peer.request(End(agency)).result == "success"
    for agency, (peer, bets) in peers.items():
        answer = peer.request(Winners(agency))
        assert answer.result == "success"
        assert answer.documents == expected_winners(bets)
        assert answer.message == str(len(expected_winners(bets)))
    assert server.count("action: sorteo | result: success") == 1
    assert server.count("action: apuesta_recibida | result: success | cantidad: 25") == 4 + 3 + 1
    assert server.count("action: apuesta_recibida | result: success | cantidad: 6") == 1
    assert server.stop() == 0
    assert check(server.storage_dir)[0]
    assert len(list(load_bets(server.storage_dir / "bets.csv"))) == 226


def test_winners_before_the_draw_is_held_and_answered_when_the_last_end_arrives(make_server):
    server = make_server(AGENCIES=2, WINNERS_WAIT_S=60, LOGGING_LEVEL="DEBUG").start()
    first, bets = send_all(server.port, 1, 30)
    first.request(End(1))
    answers = []
    holder = threading.Thread(target=lambda: answers.append(first.request(Winners(1))))
    holder.start()
    wait_for(
        lambda: server.count("action: consulta_ganadores | result: in_progress | agency: 1"),
        what="the WINNERS to be held",
    )
    assert answers == [] and holder.is_alive()
    second, _ = send_all(server.port, 2, 10)
    second.request(End(2))
    holder.join(30)
    assert answers[0].result == "success"
    assert answers[0].documents == expected_winners(bets)


def test_winners_before_the_draw_waits_then_says_wait(make_server):
    server = make_server(AGENCIES=2, WINNERS_WAIT_S=0.2).start()
    peer, _ = send_all(server.port, 1, 5)
    answer = peer.request(Winners(1))
    assert answer.result == "wait"
    assert "1 of 2" not in answer.message and "0 of 2 agencies finished" in answer.message


def test_many_winners_come_in_pages_that_each_fit_in_8_kib(make_server):
    server = make_server(AGENCIES=1).start()
    peer, bets = send_all(server.port, 1, 1500, batch=80, winners_every=1)
    peer.request(End(1))
    first = peer.request(Winners(1))
    assert first.message == "1500" and 0 < len(first.documents) < 1500
    got = list(first.documents)
    while len(got) < 1500:
        got += peer.request(Winners(1, offset=len(got))).documents
    assert tuple(got) == expected_winners(bets)


def test_a_message_over_8192_bytes_fails_and_closes_the_connection(make_server):
    server = make_server(AGENCIES=1).start()
    peer = Peer(server.port)
    peer.send_raw(b"BETS=1;" + b"x" * 9000 + b"\n")
    answer = peer.answer()
    assert answer.result == "fail" and "8192" in answer.message
    assert peer.closed_by_server()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"END,AGENCY=\xff\xfe\n", "invalid UTF-8"),
        (b"HOLA\n", "unknown message type 'HOLA'"),
        (b"END,AGENCY=one\n", "AGENCY 'one' is not a non-negative integer"),
        (b"BETS=2;AGENCY=1,FIRST_NAME=a\n", "announces 2 bets but 1"),
    ],
)
def test_a_malformed_message_fails_with_the_reason_and_the_connection_stays_usable(
    make_server, line, reason
):
    server = make_server(AGENCIES=1).start()
    peer = Peer(server.port)
    peer.send_raw(line)
    answer = peer.answer()
    assert answer.result == "fail" and reason in answer.message
    assert peer.request(Resume(1)).message == "0"


def test_a_batch_with_one_invalid_bet_stores_nothing_and_names_the_bet(make_server):
    server = make_server(AGENCIES=1).start()
    peer = Peer(server.port)
    bets = make_bets(1, 0, 5)
    bad = [*bets[:2], bets[2]._replace(number=10000), *bets[3:]]
    answer = peer.request(Bets(tuple(bad), 0))
    assert answer.result == "fail"
    assert answer.message == "bet 3: NUMBER 10000 is not in 0..9999"
    assert peer.request(Resume(1)).message == "0"
    assert "action: apuesta_recibida | result: fail | cantidad: 5" in server.logs()


def test_a_partial_message_at_eof_is_never_processed(make_server):
    server = make_server(AGENCIES=1).start()
    peer = Peer(server.port)
    wire = encode(Bets(tuple(make_bets(1, 0, 10)), 0))
    peer.send_raw(wire[: len(wire) // 2])
    peer.sock.shutdown(socket.SHUT_WR)
    assert peer.closed_by_server()
    assert Peer(server.port).request(Resume(1)).message == "0"


def test_agency_outside_the_configured_range_is_refused(make_server):
    server = make_server(AGENCIES=2).start()
    answer = Peer(server.port).request(Bets(tuple(make_bets(3, 0, 1))))
    assert (answer.result, answer.message) == ("fail", "agency 3 is not in 1..2")


def test_one_connection_speaks_for_one_agency_only(make_server):
    server = make_server(AGENCIES=2).start()
    peer, _ = send_all(server.port, 1, 5)
    answer = peer.request(Resume(2))
    assert answer.result == "fail" and "speaks for agency 1" in answer.message
    mixed = (*make_bets(1, 5, 1), *make_bets(2, 0, 1))
    answer = peer.request(Bets(mixed, 5))
    assert answer.result == "fail" and answer.message.startswith("bet 2: AGENCY 2 differs")


def test_a_gap_is_refused_naming_the_expected_position(make_server):
    server = make_server(AGENCIES=1).start()
    peer, _ = send_all(server.port, 1, 10)
    answer = peer.request(Bets(tuple(make_bets(1, 20, 5)), 20))
    assert answer.result == "fail" and "next expected position is 10" in answer.message


def test_after_end_new_bets_are_refused_but_replays_succeed_and_end_repeats(make_server):
    server = make_server(AGENCIES=2).start()
    peer, bets = send_all(server.port, 1, 10)
    assert peer.request(End(1)).result == "success"
    assert peer.request(End(1)).result == "success"
    refused = peer.request(Bets(tuple(make_bets(1, 10, 2)), 10))
    assert refused.result == "fail" and "already sent END" in refused.message
    replay = peer.request(Bets(tuple(bets[:5]), 0))
    assert (replay.result, replay.message) == ("success", "0")
    assert peer.request(Resume(1)).message == "10"


def admitted_peer(port):
    """A connection the server took (it answers PING), retrying while a closing one of an
    earlier step still counts against MAX_CONNECTIONS."""
    return wait_for(lambda: served_peer(port, Ping()), what="a connection the server admits")


def test_past_max_connections_a_newcomer_is_told_busy_with_a_retry_hint(make_server):
    server = make_server(AGENCIES=2, MAX_CONNECTIONS=2).start()
    held = [admitted_peer(server.port), admitted_peer(server.port)]
    for peer in held:
        peer.send_raw(b"RESUME,AGEN")  # half a message: the connection is never evictable
    extra = Peer(server.port)
    answer = extra.answer()
    assert (answer.result, answer.message) == ("wait", "server busy")
    assert answer.retry_ms is not None and answer.retry_ms > 0
    assert extra.closed_by_server()
    held[0].close()
    wait_for(lambda: served_peer(server.port, Resume(1)), what="a free slot")


def test_idle_connections_at_max_connections_cannot_lock_an_agency_out(make_server):
    server = make_server(AGENCIES=1, MAX_CONNECTIONS=3).start()
    holders = [admitted_peer(server.port) for _ in range(3)]  # each then idles, PING answered
    newcomer = wait_for(
        lambda: served_peer(server.port, Resume(1)),
        what="the newcomer to be served instead of the idle holders",
    )
    assert newcomer.request(Bets(tuple(make_bets(1, 0, 3)), 0)).message == "3"
    # One of them (whichever idled longest) was closed to make room; ask each briefly.
    wait_for(lambda: any(_closed_now(peer) for peer in holders), what="a holder to be closed")


def _closed_now(peer) -> bool:
    peer.timeout = 0.05
    try:
        return peer.closed_by_server()
    except TimeoutError:
        return False


def test_a_held_winners_makes_room_for_an_agency_that_has_not_finished(make_server):
    server = make_server(AGENCIES=2, MAX_CONNECTIONS=1, WINNERS_WAIT_S=60).start()
    waiting = admitted_peer(server.port)
    assert waiting.request(Bets(tuple(make_bets(1, 0, 5)), 0)).message == "5"
    assert waiting.request(End(1)).result == "success"
    waiting.send_raw(encode(Winners(1)))  # held until the draw: the only connection allowed
    second = wait_for(
        lambda: served_peer(server.port, Resume(2)),
        what="agency 2 to be served",
    )
    evicted = waiting.answer()
    assert (evicted.result, evicted.retry_ms) == ("wait", 1000)
    second.request(Bets(tuple(make_bets(2, 0, 3)), 0))
    assert second.request(End(2)).result == "success"
    assert second.request(Winners(2)).result == "success"


def test_a_silent_peer_is_dropped_after_the_idle_timeout(make_server):
    server = make_server(AGENCIES=1, IDLE_TIMEOUT_S=0.3).start()
    peer = Peer(server.port)
    peer.send_raw(b"PIN")
    assert peer.closed_by_server()
    assert "idle for 0.3s" in server.logs()


def test_sigterm_mid_ingestion_exits_0_with_every_acknowledged_batch_stored_whole(make_server):
    server = make_server(AGENCIES=2).start()
    acked = {1: 0, 2: 0}
    wrong = []

    def ingest(agency):
        peer = Peer(server.port)
        bets = make_bets(agency, 0, 20_000)
        try:
            for start in range(0, len(bets), 50):
                answer = peer.request(Bets(tuple(bets[start : start + 50]), start))
                if answer.result != "success":
                    wrong.append(answer)
                    return
                acked[agency] = start + 50
        except (OSError, ConnectionClosed):
            return  # the server stopped: expected

    threads = [threading.Thread(target=ingest, args=(a,)) for a in (1, 2)]
    for t in threads:
        t.start()
    wait_for(lambda: acked[1] >= 500 and acked[2] >= 500, what="ingestion under way")
    server.send_signal(signal.SIGTERM)
    assert server.wait() == 0
    for t in threads:
        t.join(30)
    assert wrong == [], "a batch was refused instead of stored or cut off"
    assert check(server.storage_dir)[0]
    stored = list(load_bets(server.storage_dir / "bets.csv"))
    for agency in (1, 2):
        mine = [b for b in stored if b.agency == agency]
        assert mine == make_bets(agency, 0, len(mine))
        assert len(mine) % 50 == 0, "a partial batch was stored"
        assert acked[agency] <= len(mine) <= acked[agency] + 50
    logs = server.logs()
    assert "Traceback" not in logs and "ERROR" not in logs
    for resource in ("listener", "connections", "workers", "manager"):
        assert f"action: shutdown | result: success | resource: {resource}" in logs


def test_shutdown_with_idle_clients_closes_them_and_exits_0(make_server):
    server = make_server(AGENCIES=3).start()
    peers = [Peer(server.port) for _ in range(3)]
    for agency, peer in enumerate(peers, 1):
        peer.request(Resume(agency))
    server.send_signal(signal.SIGTERM)
    assert server.wait() == 0
    assert all(peer.closed_by_server() for peer in peers)
    assert "killed: 0" in server.logs()


def test_a_restart_after_some_ends_keeps_them(make_server):
    first = make_server(AGENCIES=2).start()
    peer, _ = send_all(first.port, 1, 10)
    peer.request(End(1))
    assert first.stop() == 0
    second = make_server(AGENCIES=2, port=first.port).start()
    assert "finished: 1" in second.logs()
    peer, bets = send_all(second.port, 2, 10)
    peer.request(End(2))
    assert second.count("action: sorteo | result: success") == 1
    assert peer.request(Winners(2)).documents == expected_winners(bets)


def test_a_restart_after_the_draw_answers_winners_without_a_second_draw(make_server):
    first = make_server(AGENCIES=1).start()
    peer, bets = send_all(first.port, 1, 30)
    peer.request(End(1))
    assert first.stop() == 0
    assert first.count("action: sorteo | result: success") == 1
    second = make_server(AGENCIES=1, port=first.port).start()
    assert Peer(second.port).request(Winners(1)).documents == expected_winners(bets)
    assert second.count("action: sorteo") == 0


def test_children_and_the_manager_die_with_a_sigkilled_server(make_server):
    server = make_server(AGENCIES=3).start()
    peers = [Peer(server.port) for _ in range(3)]
    for agency, peer in enumerate(peers, 1):  # one agency each: a second one would take over
        peer.request(Resume(agency))
    wait_for(lambda: len(children_of(server.proc.pid)) >= 4, what="3 children + Manager")
    orphans = server.kill_hard()
    wait_for(lambda: not any(alive(pid) for pid in orphans), what="children to die")
    restarted = make_server(AGENCIES=3, port=server.port).start()
    assert Peer(restarted.port).request(Resume(1)).message == "0"


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"AGENCIES": "zero"}, "AGENCIES"),
        ({"SERVER_PORT": "70000"}, "SERVER_PORT"),
        ({"IDLE_TIMEOUT_S": "-1"}, "IDLE_TIMEOUT_S"),
        ({"LOGGING_LEVEL": "LOUD"}, "LOGGING_LEVEL"),
    ],
)
def test_a_bad_setting_exits_2_naming_the_key(make_server, env, key):
    server = make_server(**env).start(wait=False)
    assert server.wait() == 2
    assert f"action: config | result: fail | error: {key}:" in server.logs()


def test_decimal_seconds_and_the_effective_config_are_logged(make_server):
    server = make_server(AGENCIES=4, WINNERS_WAIT_S="0.3").start()
    assert "agencies: 4" in server.logs() and "winners_wait_s: 0.3" in server.logs()


def test_encoded_bets_of_the_helpers_stay_small():
    # Keeps the batch sizes above well under the 8 KiB cap.
    assert max(len(encode_bet(b)) for b in make_bets(1, 0, 100)) < 160


def test_healthcheck_connections_leave_no_log_line_even_at_debug(make_server):
    server = make_server(AGENCIES=1, LOGGING_LEVEL="DEBUG").start()
    before = server.logs()
    for _ in range(5):
        peer = Peer(server.port)
        assert peer.request(Ping()).message == "PONG"
        peer.close()
    agency = Peer(server.port)
    assert agency.request(Resume(1)).message == "0"
    agency.close()
    wait_for(lambda: "connection_closed | result: success | agency: 1" in server.logs())
    assert server.logs()[len(before) :].count("\n") == 2  # RESUME and the agency's close


def test_a_database_held_by_another_connection_answers_wait_and_loses_nothing(
    tmp_path, make_server
):
    """A `make db` shell inside BEGIN IMMEDIATE: batches wait (a WARNING says why), no worker
    dies, and once it lets go every bet is stored exactly once."""
    lottery = Lottery(tmp_path, make_server, {1: 800, 2: 500})
    server = lottery.start_server(DB_BUSY_TIMEOUT_S="0.2")
    lottery.start_clients(CLI_LOOP_PERIOD="5ms")
    wait_for(lambda: lottery.received() > 10, what="ingestion under way")
    shell = sqlite3.connect(server.storage_dir / "bets.db", isolation_level=None)
    shell.execute("BEGIN IMMEDIATE")
    try:
        wait_for(
            lambda: server.count("WARNING  action: store | result: fail") >= 2,
            what="batches answered wait while the database is held",
        )
    finally:
        shell.execute("ROLLBACK")
        shell.close()
    lottery.wait_clients()
    lottery.verify()
    logs = server.logs()
    assert "the database is locked by another connection" in logs
    assert "action: worker | result: fail" not in logs and "Traceback" not in logs
    assert "ERROR" not in logs
