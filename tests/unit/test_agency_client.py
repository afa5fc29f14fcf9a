"""The agency client's steps against a scripted server on a real 127.0.0.1 socket: what it
sends, and what it does with each kind of answer (no server process, no subprocess)."""

import signal
import socket
import threading
from pathlib import Path

import pytest

from client.agency import AgencyClient
from client.config import ClientConfig
from common.signals import StopFlag
from protocol import LineBuffer, Response, encode
from scripts.lab.processes import write_agency_csv
from scripts.lab.sample import make_bets


class ScriptedServer:
    """Accepts connections and answers each line with answer(line, connection_number)."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received: list[tuple[int, bytes]] = []
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            number = self.connections
            threading.Thread(target=self._talk, args=(conn, number), daemon=True).start()

    def _talk(self, conn, number) -> None:
        buffer = LineBuffer()
        with conn:
            while data := conn.recv(65536):
                buffer.feed(data)
                while (line := buffer.next_line()) is not None:
                    self.received.append((number, line))
                    reply = self.answer(line, number)
                    if reply is None:
                        return  # hang up
                    conn.sendall(encode(reply))

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() of its thread
        self.listener.close()


@pytest.fixture(autouse=True)
def servers(monkeypatch):
    """Every ScriptedServer of a test is closed after it (its threads end with it)."""
    made = []
    original = ScriptedServer.__init__

    def tracked(self, answer):
        original(self, answer)
        made.append(self)

    monkeypatch.setattr(ScriptedServer, "__init__", tracked)
    yield
    for server in made:
        server.close()


@pytest.fixture
def flag():
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    stop = StopFlag()
    yield stop
    stop.close()
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


def run_client(tmp_path: Path, flag, server, bets=5, key=None, retry=5.0) -> tuple[int, str]:
    data = write_agency_csv(tmp_path / "agency-1.csv", make_bets(1, 0, bets, winners_every=2))
    config = ClientConfig(
        agency=1,
        server=("127.0.0.1", server.port),
        batch_max_amount=2,
        log_level="DEBUG",
        data_path=data,
        rejects_path=tmp_path / "rejects.csv",
        retry_max_seconds=retry,
    )
    return AgencyClient(config, flag, key).run()


def normal(line: bytes, _conn) -> Response:
    if line.startswith(b"RESUME"):
        return Response("success", "0")
    if line.startswith(b"BETS="):
        return Response("success", line.split(b",")[0][5:].decode())
    if line.startswith(b"END"):
        return Response("success", "agency 1 finished")
    if line.startswith(b"WINNERS"):
        return Response("success", "1", ("20000000",))
    if line.startswith(b"HELLO"):
        return Response("success", "open")
    raise AssertionError(line)


def test_a_run_sends_resume_its_batches_end_and_winners_in_order(tmp_path, flag):
    server = ScriptedServer(normal)
    assert run_client(tmp_path, flag, server) == 0
    kinds = [line.split(b"=")[0].split(b",")[0] for _, line in server.received]
    assert kinds == [b"RESUME", b"BETS", b"BETS", b"BETS", b"END", b"WINNERS"]
    assert [line for _, line in server.received if line.startswith(b"BETS")][2].startswith(
        b"BETS=1,SEQ=4;"
    )


def test_server_busy_is_retried_on_a_new_connection_after_the_hint(tmp_path, flag):
    def busy_once(line, conn):
        if conn == 1:
            return Response("wait", "server busy", None, 20)
        return normal(line, conn)

    server = ScriptedServer(busy_once)
    assert run_client(tmp_path, flag, server) == 0
    assert server.connections == 2


def test_a_batch_answered_wait_is_sent_again_from_the_servers_position(tmp_path, flag):
    state = {"refused": False}

    def wait_once(line, conn):
        if line.startswith(b"BETS=2,SEQ=2") and not state["refused"]:
            state["refused"] = True
            return Response("wait", "disk full", None, 10)
        if line.startswith(b"RESUME"):
            return Response("success", "2" if state["refused"] else "0")
        return normal(line, conn)

    server = ScriptedServer(wait_once)
    assert run_client(tmp_path, flag, server) == 0
    batches = [line[: line.index(b";")] for _, line in server.received if line.startswith(b"BETS")]
    # After the refusal it resumes at 2 and resends one batch before it to be verified.
    assert batches[-3:] == [b"BETS=2,SEQ=0", b"BETS=2,SEQ=2", b"BETS=1,SEQ=4"]


def test_a_refused_batch_fails_the_run(tmp_path, flag):
    def refuse(line, conn):
        if line.startswith(b"BETS"):
            return Response("fail", "bet 1: NUMBER 10000 is not in 0..9999")
        return normal(line, conn)

    assert run_client(tmp_path, flag, ScriptedServer(refuse)) == 1


def test_a_server_that_keeps_hanging_up_is_given_up_on_after_retry_max_seconds(tmp_path, flag):
    server = ScriptedServer(lambda line, conn: None)
    assert run_client(tmp_path, flag, server, retry=0.5) == 1
    assert 2 <= server.connections <= 20  # paced by backoff, not a tight loop


def test_winners_over_several_pages_are_asked_with_offset(tmp_path, flag):
    def paged(line, conn):
        if line == b"WINNERS,AGENCY=1":
            return Response("success", "3", ("1", "2"))
        if line == b"WINNERS,AGENCY=1,OFFSET=2":
            return Response("success", "3", ("3",))
        return normal(line, conn)

    server = ScriptedServer(paged)
    assert run_client(tmp_path, flag, server) == 0
    assert (1, b"WINNERS,AGENCY=1,OFFSET=2") in server.received


def test_with_a_key_an_open_server_is_accepted_without_auth(tmp_path, flag):
    server = ScriptedServer(normal)
    assert run_client(tmp_path, flag, server, key="k" * 20) == 0
    assert server.received[0] == (1, b"HELLO,AGENCY=1")
    assert not any(line.startswith(b"AUTH") for _, line in server.received)
