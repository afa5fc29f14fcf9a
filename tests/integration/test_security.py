"""Only an agency speaks for itself: agency keys, verified replays, hardened failure paths.
Each test plays the attacker (or the careless operator) against a real server."""

import re

import pytest

from protocol import Auth, Bets, End, Hello, Ping, Resume, Winners, encode, proof
from scripts.lab.processes import Peer, start_client, write_agency_csv
from scripts.lab.sample import make_bets, wait_for
from storage import load_bets

KEYS = {1: "agency-one-key-0123456789", 2: "agency-two-key-ABCDEFGHIJ"}


@pytest.fixture
def keyed(tmp_path, make_server):
    path = tmp_path / "agencies.keys"
    path.write_text("# agency:key\n\n" + "".join(f"{a}:{k}\n" for a, k in KEYS.items()))
    for agency, key in KEYS.items():
        (tmp_path / f"agency-{agency}.key").write_text(key + "\n")
    return make_server(AGENCIES=2, AGENCY_KEYS=path).start()


def authenticated(port, agency, key=None) -> Peer:
    peer = Peer(port)
    nonce = peer.request(Hello(agency)).message
    answer = peer.request(Auth(agency, proof(key or KEYS[agency], nonce)))
    assert (answer.result, answer.message) == ("success", f"agency {agency} authenticated")
    return peer


def stored(server):
    path = server.storage_dir / "bets.csv"
    return list(load_bets(path)) if path.exists() else []


def test_a_stranger_cannot_bet_end_or_read_winners_before_authenticating(keyed):
    stranger = Peer(keyed.port)
    for message in (Bets(tuple(make_bets(1, 0, 1)), 0), End(1), Winners(1), Resume(1)):
        answer = stranger.request(message)
        assert (answer.result, answer.message) == ("fail", "authenticate first (HELLO, AUTH)")
    assert stranger.request(Ping()).message == "PONG"
    assert stored(keyed) == []


def test_hello_gives_a_fresh_nonce_and_the_right_proof_authenticates(keyed):
    peer = Peer(keyed.port)
    first, second = peer.request(Hello(1)).message, peer.request(Hello(1)).message
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second
    answer = peer.request(Auth(1, proof(KEYS[1], second)))
    assert answer.message == "agency 1 authenticated"
    assert peer.request(Resume(1)).message == "0"
    assert "action: auth | result: success | agency: 1 | peer: 127.0.0.1:" in keyed.logs()
    assert KEYS[1] not in keyed.logs() and proof(KEYS[1], second) not in keyed.logs()


@pytest.mark.parametrize("case", ["wrong key", "unknown agency", "no hello", "stale nonce"])
def test_every_failed_auth_gets_the_same_answer(keyed, case):
    peer = Peer(keyed.port)
    agency = 9 if case == "unknown agency" else 1
    nonce = "0" * 32 if case == "no hello" else peer.request(Hello(agency)).message
    if case == "stale nonce":
        peer.request(Auth(1, "f" * 64))  # uses up the nonce
    key = "not-the-key-0123456789" if case == "wrong key" else KEYS.get(agency, "x" * 16)
    answer = peer.request(Auth(agency, proof(key, nonce)))
    assert (answer.result, answer.message) == ("fail", "authentication failed")


def test_three_failed_auths_close_the_connection(keyed):
    peer = Peer(keyed.port)
    for _ in range(3):
        assert peer.request(Auth(1, "0" * 64)).message == "authentication failed"
    assert peer.closed_by_server()


def test_an_authenticated_connection_speaks_only_for_its_agency(keyed):
    peer = authenticated(keyed.port, 1)
    mixed = (*make_bets(1, 0, 1), *make_bets(2, 0, 1))
    for message in (Resume(2), End(2), Winners(2), Bets(mixed, 0), Bets(tuple(make_bets(2, 0, 1)))):
        answer = peer.request(message)
        assert (answer.result, answer.message) == ("fail", "this connection speaks for agency 1")
    assert stored(keyed) == []


def test_a_stranger_cannot_take_over_an_agencys_connection(keyed):
    agency = authenticated(keyed.port, 1)
    stranger = Peer(keyed.port)
    assert stranger.request(Resume(1)).result == "fail"
    assert stranger.request(Hello(1)).result == "success"
    assert stranger.request(Auth(1, "0" * 64)).result == "fail"
    assert agency.request(Bets(tuple(make_bets(1, 0, 2)), 0)).message == "2"
    assert "takeover" not in keyed.logs()


def test_clients_with_their_keys_complete_and_a_wrong_or_missing_key_exits_1(keyed, tmp_path):
    files = {a: write_agency_csv(tmp_path / f"a{a}.csv", make_bets(a, 0, 30)) for a in (1, 2)}
    wrong = tmp_path / "wrong.key"
    wrong.write_text("a-wrong-key-for-agency-2\n")
    bad = start_client(keyed.port, 2, files[2], tmp_path / "bad.log", CLI_KEY_PATH=wrong)
    keyless = start_client(keyed.port, 2, files[2], tmp_path / "keyless.log")
    assert bad.wait(60) == 1 and keyless.wait(60) == 1
    assert "AUTH refused: authentication failed" in (tmp_path / "bad.log").read_text()
    assert "authenticate first (HELLO, AUTH)" in (tmp_path / "keyless.log").read_text()
    clients = [
        start_client(
            keyed.port,
            a,
            files[a],
            tmp_path / f"c{a}.log",
            CLI_KEY_PATH=tmp_path / f"agency-{a}.key",
        )
        for a in (1, 2)
    ]
    assert [c.wait(60) for c in clients] == [0, 0]
    assert len(stored(keyed)) == 60


def test_open_mode_warns_once_and_a_client_with_a_key_goes_on(make_server, tmp_path):
    server = make_server(AGENCIES=1).start()
    assert "mode: open | warning: AGENCY_KEYS is not set" in server.logs()
    assert Peer(server.port).request(Hello(1)).message == "open"
    key = tmp_path / "k"
    key.write_text(KEYS[1])
    data = write_agency_csv(tmp_path / "a1.csv", make_bets(1, 0, 5))
    client = start_client(server.port, 1, data, tmp_path / "c.log", CLI_KEY_PATH=key)
    assert client.wait(60) == 0
    assert (tmp_path / "c.log").read_text().count("mode: open") == 1


@pytest.mark.parametrize(
    ("content", "line"),
    [("1:short\n", 1), ("# ok\n1:agency-one-key-0123456789\nx:agency-two-key-ABCDEFGHIJ\n", 3)],
)
def test_a_malformed_keys_file_stops_the_server_naming_file_and_line(
    make_server, tmp_path, content, line
):
    path = tmp_path / "bad.keys"
    path.write_text(content)
    server = make_server(AGENCY_KEYS=path).start(wait=False)
    assert server.wait() == 2
    assert f"AGENCY_KEYS: {path} line {line}:" in server.logs()


def test_a_replay_with_different_content_is_refused_and_stores_nothing(make_server):
    server = make_server(AGENCIES=1).start()
    peer = Peer(server.port)
    bet_a, bet_b = make_bets(1, 0, 1)[0], make_bets(1, 1, 1)[0]._replace(document="999")
    assert peer.request(Bets((bet_a,), 0)).message == "1"
    answer = peer.request(Bets((bet_b,), 0))
    assert (answer.result, answer.message) == (
        "fail",
        "bet 1: position 0 already holds a different bet",
    )
    assert stored(server) == [bet_a]


def test_a_client_rerun_with_an_edited_file_exits_1_naming_the_row(make_server, tmp_path):
    server = make_server(AGENCIES=1).start()
    bets = make_bets(1, 0, 40)
    data = write_agency_csv(tmp_path / "a1.csv", bets)
    assert start_client(server.port, 1, data, tmp_path / "c1.log").wait(60) == 0
    edited = [*bets[:9], bets[9]._replace(number=1), *bets[10:]]
    write_agency_csv(data, edited)
    assert start_client(server.port, 1, data, tmp_path / "c2.log").wait(60) == 1
    assert (
        f"line 10 of {data} differs from the bet stored at its position 9"
        in (tmp_path / "c2.log").read_text()
    )
    assert stored(server) == bets


def test_a_value_sent_by_a_peer_cannot_forge_a_log_line(make_server):
    server = make_server(AGENCIES=1).start()
    line = (
        b"BETS=1;AGENCY=1,FIRST_NAME=a,LAST_NAME=b,DOCUMENT=1,"
        b"BIRTHDATE=x | action: sorteo | result: success,NUMBER=1\n"
    )
    assert Peer(server.port).request_raw(line).result == "fail"
    wait_for(lambda: server.count("apuesta_recibida | result: fail"))
    assert server.count("action: sorteo | result: success") == 0
    assert "x %7C action: sorteo %7C result: success" in server.logs()


def test_every_complete_message_is_answered_before_an_oversized_tail_closes(make_server):
    server = make_server(AGENCIES=1).start()
    peer = Peer(server.port)
    batch = encode(Bets(tuple(make_bets(1, 0, 3)), 0))
    peer.send_raw(b"PING\n" + batch + b"x" * 9000)
    assert peer.answer().message == "PONG"
    assert peer.answer().message == "3"
    tail = peer.answer()
    assert tail.result == "fail" and "8192" in tail.message
    assert peer.closed_by_server()
    assert len(stored(server)) == 3
