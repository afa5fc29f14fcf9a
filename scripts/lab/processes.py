"""Real processes on 127.0.0.1 for integration tests: a server, and a raw protocol peer."""

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

from protocol import Ping, ProtocolError, Response, decode_response, encode
from scripts.lab.sample import wait_for
from transport import ConnectionClosed, MessageStream

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers_ping(port: int, timeout: float = 2, tls: ssl.SSLContext | None = None) -> bool:
    """Whether a server on 127.0.0.1:port answers PING with PONG now (over TLS with tls)."""
    try:
        peer = Peer(port, timeout=timeout, tls=tls)
    except OSError:
        return False
    try:
        return peer.request(Ping()) == Response("success", "PONG")
    except (OSError, ConnectionClosed, ProtocolError):
        return False
    finally:
        peer.close()


def children_of(pid: int) -> set[int]:
    """Direct children of a process, from /proc."""
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def children_by_name(pid: int) -> dict[int, str]:
    """A process's direct children, each with its name (/proc/<pid>/comm); gone ones left out."""
    found = {}
    for child in children_of(pid):
        with contextlib.suppress(OSError):
            found[child] = Path(f"/proc/{child}/comm").read_text().strip()
    return found


def child_named(pid: int, name: str) -> int | None:
    """The first direct child of that name, if any."""
    return next((c for c, n in children_by_name(pid).items() if n == name), None)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class Peer:
    """A raw protocol connection, one request and one answer at a time."""

    def __init__(
        self,
        port: int,
        timeout: float = 20,
        tls: ssl.SSLContext | None = None,
        server_name: str = "localhost",
    ) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls is not None:
            try:
                sock = tls.wrap_socket(sock, server_hostname=server_name)
            except BaseException:
                sock.close()
                raise
        self.sock = sock
        self.stream = MessageStream(self.sock)
        self.timeout = timeout

    def send_raw(self, data: bytes) -> None:
        self.stream.send(data)

    def answer(self) -> Response:
        return decode_response(self.stream.read_line(self.timeout))

    def request(self, message) -> Response:
        return self.request_raw(encode(message))

    def request_raw(self, line: bytes) -> Response:
        self.send_raw(line)
        return self.answer()

    def closed_by_server(self) -> bool:
        """True once the server has closed its side (EOF), within the timeout."""
        try:
            self.stream.read_line(self.timeout)
        except (ConnectionClosed, ConnectionResetError):
            return True
        return False

    def close(self) -> None:
        self.sock.close()


def served_peer(port: int, message) -> "Peer | None":
    """A new connection whose first request succeeds, or None (the server was busy: it may
    answer `server busy` and close, or reset the connection before the request is read)."""
    try:
        peer = Peer(port)
        if peer.request(message).result == "success":
            return peer
    except (OSError, ConnectionClosed):
        return None
    peer.close()
    return None


class Server:
    """`python -m server` as a real process, its log captured to a file."""

    def __init__(
        self,
        storage_dir: Path,
        log_path: Path,
        port: int | None = None,
        client_tls: ssl.SSLContext | None = None,  # to ask it PING when it speaks TLS
        **env,
    ) -> None:
        self.port = port or free_port()
        self.client_tls = client_tls
        self.storage_dir = storage_dir
        self.log_path = log_path
        self.env = {
            **os.environ,
            "SERVER_PORT": str(self.port),
            "STORAGE_DIR": str(storage_dir),
            "PYTHONUNBUFFERED": "1",
            "STATUS_PORT": "0",  # tests that want the status listener give it a free port
            **{k: str(v) for k, v in env.items()},
        }
        self.proc: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> "Server":
        self._log = open(self.log_path, "ab")  # closed in wait()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server"],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        if wait:
            wait_for(self.ready, what="server to answer PING")
        return self

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.logs()}")
        return answers_ping(self.port, tls=self.client_tls)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def count(self, text: str) -> int:
        return self.logs().count(text)

    def send_signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout)
        self._log.close()
        return code

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.send_signal(signum)
        return self.wait(timeout)

    def kill_hard(self) -> set[int]:
        """SIGKILL the server; return the pids its children had."""
        children = children_of(self.proc.pid)
        self.proc.kill()
        self.wait()
        return children


def stop_quietly(server: Server) -> None:
    if server.proc is not None and server.proc.poll() is None:
        server.proc.kill()
        server.proc.wait()


def elapsed(start: float) -> float:
    return time.monotonic() - start


def write_agency_csv(path: Path, bets, extra_lines: tuple[str, ...] = ()) -> Path:
    """An agency file as exported (CRLF), from bets; extra raw lines appended."""
    import csv

    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        for b in bets:
            writer.writerow(
                [b.first_name, b.last_name, b.document, b.birthdate.isoformat(), b.number]
            )
        for line in extra_lines:
            f.write(line + "\r\n")
    return path


def start_client(port: int, agency: int, data: Path, log_path: Path, **env) -> subprocess.Popen:
    """`python -m client` for one agency, its log captured to a file."""
    environment = {
        **os.environ,
        "CLI_ID": str(agency),
        "CLI_SERVER_ADDRESS": f"127.0.0.1:{port}",
        "CLI_DATA_PATH": str(data),
        "PYTHONUNBUFFERED": "1",
        **{k: str(v) for k, v in env.items() if v is not None},
    }
    for name in [k for k, v in env.items() if v is None]:  # None: leave it unset
        environment.pop(name, None)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "client"],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
