"""make bench-agencies: many agencies at once against the real server, driven from one process
(as pgbench simulates many clients from one).

AGENCIES (default 1000) agencies of BETS bets each (default 80) connect at the same moment; each
one does what the agency client does (RESUME, its batches with up to 8 in flight, END, WINNERS
until the draw), honouring `server busy` with the server's RETRY_MS plus jittered backoff, and
checks that it got exactly its own winners. The same run also times 5 agencies x 16,000 bets
through the same driver, for comparison. Prints wall time, bets/s, connection attempts per
agency, p50/p99 batch acknowledgement latency, the server's peak summed PSS and process count
and its log size; the figures are added to .data/bench.json under "agencies".
"""

import datetime
import json
import os
import random
import re
import resource
import selectors
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

from client.batcher import batches
from domain import Bet
from protocol import (
    SERVER_BUSY,
    SUCCESS,
    WAIT,
    End,
    LineBuffer,
    Resume,
    Winners,
    decode_response,
    encode,
)
from scripts import gen_data
from scripts.bench import PeakSampler, free_port, tree, wait_ping
from scripts.lab.scraper import Scraper

ROOT = Path(__file__).resolve().parent.parent
WINDOW = 8
DEADLINE_S = 600  # a run that takes longer than this is a failure, not a figure


def agency_batches(agency: int, count: int) -> tuple[list, tuple[str, ...]]:
    """The agency's BETS payloads as the client would send them, and its winners."""
    bets = [
        Bet(agency, first, last, document, datetime.date.fromisoformat(birth), number)
        for first, last, document, birth, number in gen_data.agency_rows(agency, count)
    ]
    winners = tuple(b.document for b in bets if b.number == gen_data.WINNING_NUMBER)
    return [b.payload for b in batches(bets, 0, 128)], winners


class Agency:
    """One simulated agency client: a small state machine over one non-blocking socket."""

    def __init__(self, agency: int, payloads: list[bytes], winners: tuple[str, ...]) -> None:
        self.agency = agency
        self.payloads = payloads
        self.winners = winners
        self.attempts = 0
        self.delay = 0.05
        self.latencies: list[float] = []
        self.got: tuple[str, ...] | None = None
        self.sock: socket.socket | None = None

    def start(self, loop: "Loop") -> None:
        self.attempts += 1
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.buffer = LineBuffer()
        self.out = bytearray()  # plaintext not sent yet
        self.wire = self.out  # what goes on the socket: the same bytes, or their TLS records
        self.tls = None
        if loop.tls is not None:  # TLS as the client does it, without blocking
            self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            self.tls = loop.tls.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")
            self.handshaken = False
            self.wire = bytearray()
        self.expect: deque = deque()  # what each awaited answer is for
        self.next_batch = None  # set by the RESUME answer
        self.acked = 0
        self.ended = False
        self.sock.connect_ex(loop.address)
        loop.watch(self)
        self.send(encode(Resume(self.agency)), ("resume", 0))

    def encrypt(self) -> None:
        """TLS: move plaintext into records once the handshake allows (it starts it)."""
        if self.tls is None:
            return
        if not self.handshaken:
            try:
                self.tls.do_handshake()
                self.handshaken = True
            except ssl.SSLWantReadError:
                pass
        if self.handshaken and self.out:
            self.tls.write(bytes(self.out))
            self.out.clear()
        self.wire += self.outgoing.read()

    def decrypt(self, data: bytes) -> bytes:
        if self.tls is None:
            return data
        self.incoming.write(data)
        if not self.handshaken:
            self.encrypt()
            if not self.handshaken:
                return b""
        chunks = []
        while True:
            try:
                chunk = self.tls.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                chunk = b""
            if not chunk:  # the server's close_notify
                if not chunks:
                    raise ConnectionResetError("closed by the server")
                break
            chunks.append(chunk)
        self.encrypt()
        return b"".join(chunks)

    def send(self, data: bytes, what) -> None:
        self.out += data
        self.expect.append((what, time.perf_counter()))

    def pump(self) -> None:
        """Send batches while fewer than WINDOW await answers; then END; then WINNERS."""
        if self.next_batch is None:
            return
        while self.next_batch < len(self.payloads) and len(self.expect) < WINDOW:
            self.send(self.payloads[self.next_batch], ("bets", self.next_batch))
            self.next_batch += 1
        if self.acked == len(self.payloads) and not self.expect and not self.ended:
            self.ended = True
            self.send(encode(End(self.agency)), ("end", 0))

    def answer(self, line: bytes, loop: "Loop") -> None:
        (what, _), sent = self.expect.popleft()
        response = decode_response(line)
        if response.message == SERVER_BUSY and response.result != SUCCESS:
            loop.retry(self, response.retry_ms)
            return
        if what == "resume":
            if response.result != SUCCESS:
                raise RuntimeError(f"agency {self.agency}: RESUME refused: {response}")
            position = int(response.message)
            self.next_batch = self.acked = sum(1 for _ in _prefix_batches(self.payloads, position))
        elif what == "bets":
            if response.result != SUCCESS:
                raise RuntimeError(f"agency {self.agency}: batch refused: {response}")
            self.latencies.append(time.perf_counter() - sent)
            self.acked += 1
            self.delay = 0.05
        elif what == "end":
            self.send(encode(Winners(self.agency)), ("winners", 0))
        elif what == "winners":
            if response.result == WAIT:
                loop.later(self, (response.retry_ms or 500) / 1000, self._ask_winners)
            else:
                self.got = response.documents or ()
                loop.done(self)
                return
        self.pump()

    def _ask_winners(self, loop: "Loop") -> None:
        self.send(encode(Winners(self.agency)), ("winners", 0))
        loop.want_write(self)


def _prefix_batches(payloads: list[bytes], position: int):
    """The batches entirely below position (the server already holds them)."""
    seen = 0
    for payload in payloads:
        count = int(payload.split(b",", 1)[0].split(b";", 1)[0][5:])
        if seen + count > position:
            return
        seen += count
        yield payload


class Loop:
    def __init__(self, address: tuple[str, int], tls: ssl.SSLContext | None = None) -> None:
        self.address = address
        self.tls = tls
        self.selector = selectors.DefaultSelector()
        self.timers: list[tuple[float, Agency, object]] = []
        self.pending = 0

    def watch(self, agency: Agency) -> None:
        self.selector.register(agency.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, agency)

    def want_write(self, agency: Agency) -> None:
        if agency.sock is not None:
            self.selector.modify(agency.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, agency)

    def drop(self, agency: Agency) -> None:
        if agency.sock is not None:
            self.selector.unregister(agency.sock)
            agency.sock.close()
            agency.sock = None

    def retry(self, agency: Agency, retry_ms: int | None) -> None:
        self.drop(agency)
        pause = (retry_ms or 0) / 1000 + random.random() * agency.delay
        agency.delay = min(agency.delay * 2, 2.0)
        self.later(agency, pause, lambda loop: agency.start(loop))

    def later(self, agency: Agency, seconds: float, action) -> None:
        self.timers.append((time.monotonic() + seconds, agency, action))

    def done(self, agency: Agency) -> None:
        self.drop(agency)
        self.pending -= 1

    def run(self, agencies: list[Agency]) -> None:
        self.pending = len(agencies)
        for agency in agencies:
            agency.start(self)
        deadline = time.monotonic() + DEADLINE_S
        while self.pending:
            now = time.monotonic()
            if now > deadline:
                raise RuntimeError(f"{self.pending} agencies unfinished after {DEADLINE_S}s")
            due = [t for t in self.timers if t[0] <= now]
            self.timers = [t for t in self.timers if t[0] > now]
            for _, _, action in due:
                action(self)
            timeout = min((t[0] for t in self.timers), default=now + 0.1) - now
            for key, events in self.selector.select(max(0.0, min(timeout, 0.1))):
                self._handle(key.data, events)

    def _handle(self, agency: Agency, events: int) -> None:
        try:
            agency.encrypt()
            if events & selectors.EVENT_WRITE and agency.wire:
                sent = agency.sock.send(agency.wire)
                del agency.wire[:sent]
            if not agency.wire and agency.sock is not None:
                self.selector.modify(agency.sock, selectors.EVENT_READ, agency)
            if events & selectors.EVENT_READ:
                data = agency.sock.recv(65536)
                if not data:
                    raise ConnectionResetError("closed by the server")
                agency.buffer.feed(agency.decrypt(data))
                while agency.sock is not None and (line := agency.buffer.next_line()):
                    agency.answer(line, self)
                if agency.sock is not None:
                    agency.encrypt()
                    if agency.wire:
                        self.want_write(agency)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.retry(agency, None)


def run_once(agencies: int, bets: int, work: Path, certs=None) -> dict:
    """One lottery of `agencies` x `bets` against a fresh server (TLS with certs); its figures."""
    storage = work / f"storage-{agencies}"
    shutil.rmtree(storage, ignore_errors=True)
    port = free_port()
    status_port = free_port() if SCRAPE else 0
    log_path = work / f"server-{agencies}.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "server"],
            cwd=ROOT,
            env={
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "SERVER_PORT": str(port),
                "STORAGE_DIR": str(storage),
                "AGENCIES": str(agencies),
                "STATUS_PORT": str(status_port),
                **(certs.server_env() if certs else {}),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        tls = certs.client() if certs else None
        wait_ping(port, server, tls)
        simulated = []
        for agency in range(1, agencies + 1):
            payloads, winners = agency_batches(agency, bets)
            simulated.append(Agency(agency, payloads, winners))
        sampler = PeakSampler()
        sampler.roots["server"] = server.pid
        sampler.start()
        scraper = Scraper(status_port) if SCRAPE else None
        if scraper:
            scraper.start()
        started = time.monotonic()
        driver_cpu = time.process_time()
        Loop(("127.0.0.1", port), tls).run(simulated)
        wall = time.monotonic() - started
        driver_cpu = time.process_time() - driver_cpu
        scraped = scraper.stop() if scraper else {}
        sampler.done.set()
        sampler.join()
        processes = len(tree(server.pid))
    finally:
        server.send_signal(signal.SIGTERM)
        _, status, usage = os.wait4(server.pid, 0)
        code = server.returncode = os.waitstatus_to_exitcode(status)
    wrong = [a.agency for a in simulated if a.got != a.winners]
    if wrong or code != 0:
        raise RuntimeError(f"wrong winners for agencies {wrong[:10]}; server exit {code}")
    latencies = sorted(x for a in simulated for x in a.latencies)
    handshakes = re.search(r"handshakes: (\d+) \| handshake_s: ([\d.]+)", log_path.read_text())
    attempts = [a.attempts for a in simulated]
    return {
        "agencies": agencies,
        "bets_per_agency": bets,
        "bets": agencies * bets,
        "wall_s": wall,
        "bets_per_s": agencies * bets / wall,
        "attempts_per_agency": statistics.mean(attempts),
        "attempts_max": max(attempts),
        "ack_p50_ms": latencies[len(latencies) // 2] * 1000,
        "ack_p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "server_cpu_s": usage.ru_utime + usage.ru_stime,
        "driver_cpu_s": driver_cpu,
        "server_peak_pss_mb": sampler.peaks.get("server", 0) / 1024,
        "server_processes": processes,
        "server_log_mb": log_path.stat().st_size / 2**20,
        "tls": certs is not None,
        "tls_handshakes": int(handshakes.group(1)) if handshakes else 0,
        "tls_handshake_ms": (
            float(handshakes.group(2)) * 1000 / max(1, int(handshakes.group(1)))
            if handshakes
            else 0
        ),
        **scraped,
    }


# STATUS=1: the status listener on, scraped every 100 ms; its latencies are printed.
SCRAPE = os.environ.get("STATUS", "0") not in ("", "0")
# TLS=1: each lottery in clear and over TLS (alternating), with the ratios; the large one in
# PAIRS back-to-back pairs (default 3), whose median ratio is the figure.
TLS = os.environ.get("TLS", "0") not in ("", "0")
PAIRS = max(1, int(os.environ.get("PAIRS", "3")))


def main() -> int:
    agencies = int(os.environ.get("AGENCIES", "1000"))
    bets = int(os.environ.get("BETS", "80"))
    out = Path(os.environ.get("BENCH_OUT", ROOT / ".data"))
    work = out / "bench"
    work.mkdir(parents=True, exist_ok=True)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"bench-agencies: {agencies} x {bets} bets, and 5 x 16,000 for comparison, "
          f"{os.cpu_count()} cores, open files {hard}"
          f"{', plaintext and TLS' if TLS else ''}", flush=True)  # fmt: skip
    certs = None
    if TLS:
        from scripts.lab.tls import make_certs

        certs = make_certs(work / "tls")
    results = []
    for size in ((5, 16000), (agencies, bets)):
        results.append(run_once(*size, work))
        if certs is not None:
            results.append(run_once(*size, work, certs))
    pairs = []  # TLS / plaintext of back-to-back runs: this machine's noise shows in their spread
    for _ in range(PAIRS - 1 if certs is not None else 0):
        plain_run = run_once(agencies, bets, work)
        tls_run = run_once(agencies, bets, work, certs)
        pairs.append((plain_run, tls_run))
    print(
        f"\n{'mode':>9} {'agencies':>8} {'bets':>7} {'wall s':>7} {'bets/s':>8} {'tries/ag':>8} "
        f"{'max':>4} {'p50 ms':>7} {'p99 ms':>7} {'PSS MB':>7} {'procs':>5} {'log MB':>6} "
        f"{'srv CPU':>7} {'drv CPU':>7}"
    )
    for r in results:
        print(
            f"{'tls' if r['tls'] else 'plaintext':>9} {r['agencies']:>8} {r['bets']:>7} {r['wall_s']:>7.2f} {r['bets_per_s']:>8.0f} "
            f"{r['attempts_per_agency']:>8.2f} {r['attempts_max']:>4} {r['ack_p50_ms']:>7.1f} "
            f"{r['ack_p99_ms']:>7.1f} {r['server_peak_pss_mb']:>7.1f} "
            f"{r['server_processes']:>5} {r['server_log_mb']:>6.2f} "
            f"{r['server_cpu_s']:>7.2f} {r['driver_cpu_s']:>7.2f}"
        )
    plain = [r for r in results if not r["tls"]]
    ratio = plain[1]["wall_s"] / plain[0]["wall_s"]
    print(f"\nwall time of {agencies} agencies / 5 agencies (same bets driver): {ratio:.2f}x")
    for r in results:
        if r["tls"]:
            (same,) = [p for p in plain if p["agencies"] == r["agencies"]]
            print(f"{r['agencies']} agencies over TLS / plaintext: wall "
                  f"{r['wall_s'] / same['wall_s']:.2f}x, server CPU "
                  f"{r['server_cpu_s'] / same['server_cpu_s']:.2f}x, peak PSS "
                  f"{r['server_peak_pss_mb']:.1f} MB; {r['tls_handshakes']} handshakes, "
                  f"{r['tls_handshake_ms']:.2f} ms each in the TLS process")  # fmt: skip
    if pairs:
        big = [r for r in results if r["agencies"] == agencies]
        pairs.insert(0, (big[0], big[1]))
        walls = [t["wall_s"] / p["wall_s"] for p, t in pairs]
        cpus = [t["server_cpu_s"] / p["server_cpu_s"] for p, t in pairs]
        print(f"{agencies} agencies, {len(pairs)} back-to-back pairs: TLS / plaintext wall "
              f"median {statistics.median(walls):.2f}x (" + ", ".join(f"{w:.2f}" for w in walls)
              + f"), server CPU median {statistics.median(cpus):.2f}x, max attempts per agency "
              f"{max(t['attempts_per_agency'] for _, t in pairs):.2f}, peak PSS over TLS "
              f"{max(t['server_peak_pss_mb'] for _, t in pairs):.1f} MB")  # fmt: skip
    if SCRAPE:
        for r in results:
            print(f"{r['agencies']} agencies, status scraped every 100 ms: /status.json p50 "
                  f"{r['status_json_p50_ms']:.1f} ms, max {r['status_json_max_ms']:.1f} ms; /metrics "
                  f"p50 {r['metrics_p50_ms']:.1f} ms, max {r['metrics_max_ms']:.1f} ms "
                  f"({r['status_json_count']} scrapes, {r['failures']} failed)")  # fmt: skip
    report_path = out / "bench.json"
    try:
        report = json.loads(report_path.read_text())
    except (OSError, ValueError):
        report = {}
    report["agencies"] = {
        "when": datetime.datetime.now().isoformat(timespec="seconds"),
        "results": results,
        "tls_pairs": [{"plaintext": p, "tls": t} for p, t in pairs],
        "ratio": ratio,
    }
    report_path.write_text(json.dumps(report, indent=2))
    print(f"wrote {report_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
