"""TLS on the lottery port, against the real server: verification, the plaintext port, record
boundaries, slow and half-open handshakes, shutdown, what a wire tap sees, whole lotteries."""

import contextlib
import json
import os
import signal
import socket
import ssl
import threading

import pytest

from protocol import MAX_MESSAGE_BYTES as MAX
from protocol import Bets, CannotEncode, Ping, Response, encode
from scripts.lab.lottery import Lottery
from scripts.lab.processes import (
    Peer,
    alive,
    children_by_name,
    free_port,
    start_client,
    write_agency_csv,
)
from scripts.lab.sample import make_bets, wait_for
from scripts.lab.tls import make_certs

PONG = Response("success", "PONG")
NOT_TLS = b"RESULT=fail,MESSAGE=this port speaks TLS: connect with TLS (client tls.caPath) or to the plain port\n"


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_server(make_server, certs):
    def make(**env):
        return make_server(client_tls=certs.client(), **certs.server_env(), **env)

    return make


def tls_peer(server, certs, **kwargs) -> Peer:
    return Peer(server.port, tls=certs.client(), **kwargs)


def test_a_wrong_ca_or_a_wrong_name_is_refused_with_openssls_reason(tls_server, certs, tmp_path):
    server = tls_server(AGENCIES=1).start()
    other = make_certs(tmp_path / "other-ca")
    data = write_agency_csv(tmp_path / "agency-1.csv", make_bets(1, 0, 5))
    cases = {
        "wrong-ca": {"CLI_TLS_CA": other.ca},
        "wrong-name": {"CLI_TLS_CA": certs.ca, "CLI_TLS_SERVER_NAME": "elsewhere.example"},
    }
    for name, env in cases.items():
        log = tmp_path / f"{name}.log"
        client = start_client(server.port, 1, data, log, CLI_RETRY_MAXSECONDS=5, **env)
        assert client.wait(30) == 1, log.read_text()
        text = log.read_text()
        assert "action: run | result: fail" in text
        assert "certificate verify failed: " in text
        assert "action: connect | result: success" not in text.split("certificate verify")[1]
    assert "unable to get local issuer certificate" in (tmp_path / "wrong-ca.log").read_text()
    assert "Hostname mismatch" in (tmp_path / "wrong-name.log").read_text()
    assert not (server.storage_dir / "bets.csv").exists() or not list(
        open(server.storage_dir / "bets.csv")
    )
    with pytest.raises(ssl.SSLCertVerificationError):  # and the library agrees, directly
        Peer(server.port, tls=other.client())


def test_plaintext_on_the_tls_port_gets_one_clear_line_and_is_closed(tls_server, certs):
    server = tls_server().start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(encode(Ping()))
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    assert received == NOT_TLS
    assert tls_peer(server, certs).request(Ping()) == PONG  # and TLS still works


def test_the_plain_port_serves_old_clients_and_refuses_a_tls_client_cleanly(
    tls_server, certs, tmp_path
):
    plain = free_port()
    server = tls_server(AGENCIES=1, PLAIN_PORT=plain).start()
    assert "PLAIN_PORT speaks plaintext" in server.logs()
    assert Peer(plain).request(Ping()) == PONG
    # A TLS client there: its handshake fails at once (no retry loop) with a reason.
    data = write_agency_csv(tmp_path / "agency-1.csv", make_bets(1, 0, 5))
    log = tmp_path / "client.log"
    client = start_client(plain, 1, data, log, CLI_TLS_CA=certs.ca, CLI_RETRY_MAXSECONDS=30)
    assert client.wait(20) == 1, log.read_text()
    assert "TLS handshake with 127.0.0.1:" in log.read_text()
    assert "a plaintext port?" in log.read_text()
    # What the server said to it, read below TLS: one line, then the connection closed.
    with socket.create_connection(("127.0.0.1", plain), timeout=10) as sock:
        hello = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = certs.client().wrap_bio(*hello, server_hostname="localhost")
        with pytest.raises(ssl.SSLWantReadError):
            tls.do_handshake()
        sock.sendall(hello[1].read())
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    assert (
        received
        == b"RESULT=fail,MESSAGE=this port speaks plaintext: a TLS client must connect to the TLS port\n"
    )
    wait_for(lambda: "a TLS client on the plaintext port" in server.logs(), what="its log line")


def test_record_boundaries_do_not_matter(tls_server, certs):
    server = tls_server(AGENCIES=1).start()
    peer = tls_peer(server, certs)
    # One message split across three records.
    for part in (b"PI", b"N", b"G\n"):
        peer.send_raw(part)
    assert peer.answer() == PONG
    # Two messages in one record.
    peer.send_raw(b"PING\nPING\n")
    assert peer.answer() == PONG
    assert peer.answer() == PONG
    # A batch near 8 KiB, split at an awkward place, then one in a single record.
    bets = make_bets(1, 0, 400)
    count = next(n for n in range(1, 400) if len(_bets_message(bets[: n + 1], 0)) > MAX)
    first = bets[:count]
    message = _bets_message(first, 0)
    assert MAX - 120 < len(message) <= MAX
    peer.send_raw(message[:4097])
    peer.send_raw(message[4097:])
    answer = peer.answer()
    assert answer.result == "success", answer
    second = bets[len(first) : len(first) * 2]
    message = encode(Bets(tuple(second), len(first)))
    peer.send_raw(message)
    assert peer.answer().result == "success"
    # The client's close_notify: the server closes too, with its own.
    peer.sock.unwrap()
    peer.close()
    assert tls_peer(server, certs).request(Ping()) == PONG
    stored = (server.storage_dir / "bets.csv").read_text().count("\n")
    assert stored == len(first) + len(second)


def _bets_message(bets, seq) -> bytes:
    try:
        return encode(Bets(tuple(bets), seq))
    except CannotEncode:
        return b"x" * (MAX + 1)


def test_slow_handshakes_are_closed_at_the_deadline_while_agencies_are_served(tls_server, certs):
    server = tls_server(TLS_HANDSHAKE_TIMEOUT_S=1, TLS_MAX_HANDSHAKES=4).start()
    served = tls_peer(server, certs)
    # More half-open handshakes than the cap: silent ones, and one that sends half a hello.
    silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(12)]
    hello = ssl.MemoryBIO(), ssl.MemoryBIO()
    with pytest.raises(ssl.SSLWantReadError):
        certs.client().wrap_bio(*hello, server_hostname="localhost").do_handshake()
    half = socket.create_connection(("127.0.0.1", server.port))
    half.sendall(hello[1].read()[:20])
    # The agency already connected is served throughout, and a new one gets in.
    for _ in range(20):
        assert served.request(Ping()) == PONG
    newcomer = tls_peer(server, certs)
    assert newcomer.request(Ping()) == PONG
    for sock in [*silent, half]:
        sock.settimeout(15)
        assert sock.recv(100) == b""  # closed by the server, not by us
        sock.close()
    wait_for(lambda: "action: tls_handshake | result: fail" in server.logs(), what="the line")
    line = next(x for x in server.logs().splitlines() if "tls_handshake | result: fail" in x)
    assert "timeouts: " in line or "evicted: " in line
    assert served.request(Ping()) == PONG


def test_sigterm_with_parked_tls_connections_sends_close_notify_and_exits_0(tls_server, certs):
    server = tls_server().start()
    peers = [tls_peer(server, certs) for _ in range(20)]
    for peer in peers:
        assert peer.request(Ping()) == PONG
    server.send_signal(signal.SIGTERM)
    assert server.wait(30) == 0
    for peer in peers:
        # A clean TLS end (close_notify): recv returns b"", not SSLEOFError.
        assert peer.sock.recv(100) == b""
    logs = server.logs()
    # The TLS process ended by itself (its own last line), not killed after the wait.
    assert "resource: tls connections | closed: " in logs
    assert "result: fail" not in logs


class Tap:
    """A TCP relay between a client and the server that keeps every byte it forwards."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.seen = bytearray()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src, dst) -> None:
        try:
            while data := src.recv(65536):
                with self.lock:
                    self.seen += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plaintext-control"])
def test_a_wire_tap_sees_no_document_over_tls(tls, make_server, certs, tmp_path):
    env = certs.server_env() if tls else {}
    server = make_server(AGENCIES=1, client_tls=certs.client() if tls else None, **env).start()
    tap = Tap(server.port)
    bets = make_bets(1, 0, 300, winners_every=50)
    data = write_agency_csv(tmp_path / "agency-1.csv", bets)
    log = tmp_path / "client.log"
    client = start_client(tap.port, 1, data, log, CLI_TLS_CA=certs.ca if tls else None,
                          CLI_TLS_SERVER_NAME="localhost" if tls else None)  # fmt: skip
    assert client.wait(60) == 0, log.read_text()
    tap.close()
    seen = bytes(tap.seen)
    assert len(seen) > 300 * 20  # it did carry the lottery
    found = [b.document for b in bets if b.document.encode() in seen]
    names = [b.last_name for b in bets if b.last_name.encode() in seen]
    if tls:
        assert found == [] and names == []
        assert b"BETS=" not in seen and b"RESULT=" not in seen
    else:  # the control: the same tap does see a plaintext lottery
        assert len(found) == len(bets)


def _tls_lottery(tmp_path, make_server, certs, sizes):
    lottery = Lottery(tmp_path, make_server, sizes, batch=20)
    keys = tmp_path / "agencies.keys"
    lines = []
    for agency in sizes:
        key = f"agency-{agency}-key-0123456789abcdef"
        (tmp_path / f"agency-{agency}.key").write_text(key + "\n")
        lines.append(f"{agency}:{key}\n")
    keys.write_text("".join(lines))
    server_env = {**certs.server_env(), "AGENCY_KEYS": keys, "client_tls": certs.client()}

    def client_env(agency):
        return {"CLI_TLS_CA": certs.ca, "CLI_KEY_PATH": tmp_path / f"agency-{agency}.key"}

    return lottery, server_env, client_env


def test_a_whole_lottery_over_tls_with_keys_gives_the_right_winners(tmp_path, make_server, certs):
    lottery, server_env, client_env = _tls_lottery(
        tmp_path, make_server, certs, {1: 900, 2: 700, 3: 400}
    )
    server = lottery.start_server(**server_env)
    for agency in lottery.bets:
        lottery.start_client(agency, **client_env(agency))
    lottery.wait_clients()
    lottery.verify()
    assert "result: fail" not in server.logs().replace("apuesta_recibida | result: fail", "")
    assert "mode: keys" in server.logs()


def test_exactly_once_over_tls_across_a_server_sigkill_and_restart(tmp_path, make_server, certs):
    lottery, server_env, client_env = _tls_lottery(tmp_path, make_server, certs, {1: 3000, 2: 3000})
    first = lottery.start_server(**server_env)
    for agency in lottery.bets:
        lottery.start_client(agency, CLI_RETRY_MAXSECONDS=60, **client_env(agency))
    wait_for(lambda: lottery.stored(1) >= 400, timeout=60, what="agency 1 to be mid-stream")
    pids = first.kill_hard()
    wait_for(lambda: not any(alive(p) for p in pids), what="its processes (TLS included) to die")
    lottery.start_server(**server_env)
    lottery.wait_clients()
    lottery.verify()


def test_a_dead_tls_process_is_replaced_and_clients_connect_again(tls_server, certs):
    from tests.integration.test_status import get

    status_port = free_port()
    server = tls_server(STATUS_PORT=status_port).start()
    wait_for(lambda: get(status_port, "/readyz")[0] == 200, what="ready")
    before = tls_peer(server, certs)
    assert before.request(Ping()) == PONG
    (tls_pid,) = [p for p, n in children_by_name(server.proc.pid).items() if n == "lottery-tls"]
    os.kill(tls_pid, signal.SIGKILL)
    wait_for(lambda: "the TLS process exited" in server.logs(), what="the acceptor to notice")
    # Not ready while the lottery port is closed (the restart waits a second), ready after.
    wait_for(lambda: get(status_port, "/readyz")[0] == 503, what="/readyz to say not ready")
    wait_for(lambda: "restarted: True" in server.logs(), what="a new TLS process")
    wait_for(lambda: get(status_port, "/readyz")[0] == 200, what="ready again")
    assert tls_peer(server, certs).request(Ping()) == PONG
    assert before.closed_by_server()  # its session died with the process that held it


def test_tls_cert_without_key_and_an_unreadable_cert_exit_2_naming_the_key(
    make_server, certs, tmp_path
):
    alone = make_server(TLS_CERT=certs.cert)
    alone.start(wait=False)
    assert alone.wait(30) == 2
    assert "TLS_KEY: required with TLS_CERT" in alone.logs()
    missing = make_server(TLS_CERT=tmp_path / "nope.pem", TLS_KEY=certs.key)
    missing.start(wait=False)
    assert missing.wait(30) == 2
    assert "TLS_CERT: no file at" in missing.logs()
    wrong = tmp_path / "not-a-key.pem"
    wrong.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    wrong.chmod(0o600)
    garbled = make_server(TLS_CERT=certs.cert, TLS_KEY=wrong)
    garbled.start(wait=False)
    assert garbled.wait(30) == 2
    assert "TLS_CERT/TLS_KEY: cannot load" in garbled.logs()
    assert not (tmp_path / "data" / "bets.db").exists()  # stopped before storage opened


def test_a_key_readable_by_others_is_warned_about(make_server, certs, tmp_path):
    loose = tmp_path / "loose.key"
    loose.write_bytes(certs.key.read_bytes())
    loose.chmod(0o644)
    server = make_server(client_tls=certs.client(), TLS_CERT=certs.cert, TLS_KEY=loose).start()
    assert "readable by others (mode 0644): chmod 600 it" in server.logs()


def test_sslyze_finds_the_lottery_port_compliant_with_mozilla_intermediate(tls_server, certs):
    """Everything but the private CA's path validation (no public store trusts it)."""
    from sslyze import Scanner, ServerNetworkLocation, ServerScanRequest
    from sslyze.mozilla_tls_profile.tls_config_checker import (
        SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
        MozillaTlsConfiguration,
        ServerNotCompliantWithTlsConfiguration,
        TlsConfigurationEnum,
        check_server_against_tls_configuration,
    )

    server = tls_server().start()
    scanner = Scanner()
    scanner.queue_scans([ServerScanRequest(
        server_location=ServerNetworkLocation("127.0.0.1", server.port),
        scan_commands=SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
    )])  # fmt: skip
    (result,) = list(scanner.get_results())
    profile = MozillaTlsConfiguration.get(TlsConfigurationEnum.MOZILLA_INTERMEDIATE)
    with pytest.raises(ServerNotCompliantWithTlsConfiguration) as raised:
        check_server_against_tls_configuration(result, profile)
    assert set(raised.value.issues) == {"certificate_path_validation"}, raised.value.issues
    curves = {c.name for c in result.scan_result.elliptic_curves.result.supported_curves}
    assert curves == {"X25519", "secp256r1", "secp384r1"}  # P-256 by its SECG name
    assert tls_peer(server, certs).request(Ping()) == PONG  # still serving


def test_the_status_listener_counts_tls_handshakes_and_shows_no_tls_when_plaintext(
    tls_server, make_server, certs
):
    from tests.integration.test_status import get, samples

    status_port = free_port()
    server = tls_server(STATUS_PORT=status_port).start()
    peers = [tls_peer(server, certs) for _ in range(3)]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"PING\n")
        assert sock.recv(200) == NOT_TLS

    def counted():
        found = samples(get(status_port, "/metrics")[1].decode())
        done = found.get(("lottery_tls_handshakes_total", (("result", "plaintext"),))) == 1
        return found if done and found.get(("lottery_tls_connections", ())) == 3 else None

    found = wait_for(counted, what="the TLS counts")
    # The readiness PING's handshake counts too.
    assert found[("lottery_tls_handshakes_total", (("result", "success"),))] >= 3
    assert found[("lottery_tls_handshake_seconds_total", ())] > 0
    assert found[("lottery_tls_handshakes_in_progress", ())] == 0
    tls = json.loads(get(status_port, "/status.json")[1])["tls"]
    assert tls["connections"] == 3 and tls["handshakes_total"]["plaintext"] == 1
    for peer in peers:
        peer.close()
    plain_status = free_port()
    make_server(STATUS_PORT=plain_status).start()
    reading = json.loads(wait_for(lambda: get(plain_status, "/status.json")[1]))
    assert reading["tls"] is None
    assert b"lottery_tls_" not in get(plain_status, "/metrics")[1]


def test_the_containers_healthcheck_speaks_tls_to_the_tls_port(tls_server, certs):
    import subprocess
    import sys

    from scripts.lab.processes import ROOT

    server = tls_server().start()
    env = {**os.environ, "SERVER_PORT": str(server.port), **certs.server_env()}
    check = [sys.executable, "-m", "server.healthcheck"]
    assert subprocess.run(check, cwd=ROOT, env=env, timeout=30).returncode == 0
    plain = {k: v for k, v in env.items() if not k.startswith("TLS_")}
    refused = subprocess.run(check, cwd=ROOT, env=plain, capture_output=True, timeout=30)
    assert (
        refused.returncode == 1
        and b"unhealthy: PING answered fail: this port speaks TLS" in refused.stderr
    )


def _private_scalar(key_path) -> bytes:
    import subprocess

    text = subprocess.run(["openssl", "pkey", "-in", str(key_path), "-text", "-noout"],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    hex_digits = text.split("priv:")[1].split("pub:")[0]
    return bytes.fromhex("".join(c for c in hex_digits if c in "0123456789abcdef"))


def _memory_holds(pid: int, needles: list[bytes]) -> bool:
    """Whether any needle is in the process's readable private memory (read via /proc)."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            span, perms = fields[0], fields[1]
            if not perms.startswith("r") or (len(fields) > 5 and fields[5].startswith("[v")):
                continue
            start, end = (int(x, 16) for x in span.split("-"))
            try:
                mem.seek(start)
                chunk = mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue
            if any(n in chunk for n in needles):
                return True
    return False


def test_only_the_tls_process_ever_holds_the_private_key(tls_server, certs):
    """The key is loaded after the fork, by the TLS process alone: neither the acceptor nor a
    worker (forked from it) has it in memory, in any form the file or OpenSSL keeps it in."""
    server = tls_server().start()
    for _ in range(3):
        assert tls_peer(server, certs).request(Ping()) == PONG
    scalar = _private_scalar(certs.key)
    pem_lines = [x.encode() for x in certs.key.read_text().splitlines() if "-----" not in x]
    # BIGNUMs keep 64-bit limbs little-endian on this machine: the scalar byte-reversed.
    needles = [scalar, scalar[::-1], *pem_lines]
    names = children_by_name(server.proc.pid)
    (tls_pid,) = [pid for pid, name in names.items() if name == "lottery-tls"]
    try:
        assert _memory_holds(tls_pid, needles)  # the control: the scan finds it where it is
    except PermissionError:
        pytest.skip("reading another process's memory is not allowed here (ptrace_scope)")
    others = [server.proc.pid, *(p for p, n in names.items() if n == "lottery-worker")]
    assert len(others) >= 2
    for pid in others:
        assert not _memory_holds(pid, needles), f"{pid} ({names.get(pid, 'acceptor')}) holds it"
