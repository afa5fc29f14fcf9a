"""The status listener process: a small threaded HTTP server, bounded and with timeouts, so
that no HTTP client (slow, hung, or a flood of them) can touch the lottery's hot path: it
runs in its own process, reads storage read-only and takes no storage lock."""

import logging
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from common.logs import event
from common.signals import StopFlag, die_with_parent, name_process, reset_signals
from server.meters import Meters
from server.status.metrics import exposition
from server.status.snapshot import CACHE_S, Status
from transport.stream import drain, wait_readable

log = logging.getLogger(__name__)

MAX_CLIENTS = 32  # HTTP connections served at once; the next ones get a 503 and are closed
CLIENT_TIMEOUT_S = 5.0  # a client that neither sends its request nor reads its answer
HISTORY_EVERY_S = 1.0  # one point of the chart a second
PAGE = resources.files("server.status").joinpath("page.html").read_bytes()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, status: Status, meters: Meters) -> None:
        self.status, self.meters = status, meters
        self.slots = threading.BoundedSemaphore(MAX_CLIENTS)
        super().__init__(address, _Handler)

    def process_request(self, request, client_address) -> None:
        if not self.slots.acquire(blocking=False):
            try:
                request.settimeout(0.5)
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n"
                                b"Connection: close\r\nRetry-After: 1\r\n\r\nbusy\n")  # fmt: skip
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class _Handler(BaseHTTPRequestHandler):
    timeout = CLIENT_TIMEOUT_S  # applies to reading the request and writing the answer
    server_version = "lottery-status"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        status: Status = self.server.status
        if path == "/healthz":
            alive = status.health().alive
            self._send(200 if alive else 503, b"ok\n" if alive else b"acceptor loop stalled\n")
        elif path == "/readyz":
            health = status.health()
            body = b"ready\n" if health.ready else f"not ready: {health.why}\n".encode()
            self._send(200 if health.ready else 503, body)
        elif path == "/status.json":
            self._send(200, status.read_json(), "application/json")
        elif path == "/metrics":
            body = exposition(status, self.server.meters)
            self._send(200, body, "text/plain; version=0.0.4; charset=utf-8")
        elif path in ("/", "/index.html"):
            self._send(200, PAGE, "text/html; charset=utf-8")
        else:
            self._send(404, b"not found\n")

    def _send(self, code: int, body: bytes, kind: str = "text/plain; charset=utf-8") -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        pass  # a scrape a second is not worth a log line


def run_status(config, meters: Meters, parent_pid: int, inherited: list) -> None:
    """Status process entry: serve until SIGTERM or the acceptor's death."""
    reset_signals()
    die_with_parent(parent_pid)
    name_process("lottery-status")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the acceptor decides when it stops
    for other in inherited:
        other.close()
    status = Status(config.storage_dir, meters, config.agencies)
    try:
        server = _Server((config.status_host, config.status_port), status, meters)
    except OSError as exc:
        # Taking bets never depends on the page: one line, and the lottery runs without it.
        where = f"{config.status_host}:{config.status_port}"
        log.warning(event("status", "fail", address=where, error=f"{exc}; no status page"))
        return
    log.info(
        event("status", "success", url=f"http://{_shown(config.status_host)}:{server.server_port}/")
    )
    flag = StopFlag(stop_signals=(signal.SIGTERM,))
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
    ).start()
    passes = 0
    while not flag.stopping:
        status.refresh(with_history=passes % round(HISTORY_EVERY_S / CACHE_S) == 0)
        passes += 1
        if wait_readable([flag.wake_fd], CACHE_S):
            drain(flag.wake_fd)
    server.shutdown()
    server.server_close()


def _shown(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0") else host
