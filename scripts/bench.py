"""make bench: the real pipeline (server + N clients over loopback, durable acks), timed.

BENCH_RUNS (default 5) runs after one warm-up; DATA=<dir> uses that folder's agency-<i>.csv,
BENCH_OUT=<dir> writes elsewhere than .data;
otherwise a generated set of 5 agencies and 80,000 bets of uneven sizes. Prints one line per
run and median / min / max of each figure, plus a storage-only floor (the store calls in one
process, no network) and the ingestion speed of a growing database; writes .data/bench.json.
"""

import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from client.batcher import batches
from client.reader import BetSource, Rejects
from scripts import gen_data
from scripts.lab import storing
from scripts.lab.processes import answers_ping
from scripts.lab.scraper import Scraper
from storage import BetStore, recover

ROOT = Path(__file__).resolve().parent.parent
SIZES = [27000, 23000, 18000, 11000, 1000]
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree(pid: int) -> list[int]:
    """pid and all its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return found


def pss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


class PeakSampler(threading.Thread):
    """Samples the summed PSS of process trees every few milliseconds; keeps the peaks."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.roots: dict[str, int] = {}
        self.peaks: dict[str, int] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            for name, pid in list(self.roots.items()):
                self.peaks[name] = max(self.peaks.get(name, 0), pss_kib(tree(pid)))


def stamp_of(line: str) -> float:
    match = STAMP.match(line)
    return datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def wait_ping(port: int, proc: subprocess.Popen, tls=None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if answers_ping(port, tls=tls):
            return
        time.sleep(0.01)
    raise RuntimeError("the server did not start")


@dataclass(frozen=True)
class Mode:
    """How a run differs from the plain one: TLS certificates, a replica."""

    certs: object = None
    replica_sync: str = ""  # end or commit: Litestream replicates into work/replica

    def server_env(self, work: Path) -> dict:
        env = self.certs.server_env() if self.certs else {}
        if self.replica_sync:
            env |= {"REPLICA_URL": str(work / "replica"), "REPLICA_SYNC": self.replica_sync,
                    "LOTTERY_ID": "bench"}  # fmt: skip
        return env


def start_server(storage: Path, port: int, agencies: int, log, **env) -> subprocess.Popen:
    """`python -m server` on port for agencies, storing into storage, its output into log."""
    return subprocess.Popen(
        [sys.executable, "-m", "server"],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "SERVER_PORT": str(port),
             "STORAGE_DIR": str(storage), "AGENCIES": str(agencies), "STATUS_PORT": "0", **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip


def pipeline_run(data: Path, agencies: int, work: Path, mode: Mode = Mode()) -> dict:
    """One end-to-end run on a fresh storage folder, as mode says; its figures."""
    certs = mode.certs
    storage = work / "storage"
    shutil.rmtree(storage, ignore_errors=True)
    shutil.rmtree(work / "replica", ignore_errors=True)
    port = free_port()
    status_port = free_port() if SCRAPE else 0
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server_log = open(work / "server.log", "wb")
    server = start_server(storage, port, agencies, server_log,
                          STATUS_PORT=str(status_port), **mode.server_env(work))  # fmt: skip
    wait_ping(port, server, certs.client() if certs else None)
    sampler = PeakSampler()
    sampler.roots["server"] = server.pid
    sampler.start()
    scraper = Scraper(status_port) if SCRAPE else None
    if scraper:
        scraper.start()
    started = time.time()
    clients = []
    for agency in range(1, agencies + 1):
        log = open(work / f"client{agency}.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "client"],
            cwd=ROOT,
            env={
                **env,
                "CLI_ID": str(agency),
                "CLI_SERVER_ADDRESS": f"127.0.0.1:{port}",
                "CLI_DATA_PATH": str(data / f"agency-{agency}.csv"),
                "CLI_REJECTS_PATH": str(work / f"rejects-{agency}.csv"),
                **({"CLI_TLS_CA": str(certs.ca)} if certs else {}),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        clients.append((proc, log))
    sampler.roots["client"] = clients[0][0].pid  # the largest agency
    codes, client_cpu = [], 0.0
    for proc, _ in clients:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        codes.append(proc.returncode)
        client_cpu += usage.ru_utime + usage.ru_stime
    sampler.done.set()
    sampler.join()
    scraped = scraper.stop() if scraper else {}
    server.send_signal(signal.SIGTERM)
    _, status, usage = os.wait4(server.pid, 0)
    server.returncode = os.waitstatus_to_exitcode(status)
    server_log.close()
    if any(codes) or server.returncode:
        raise RuntimeError(f"a process failed: clients {codes}, server {server.returncode}")
    ends, answers, bets = [], [], 0
    for agency in range(1, agencies + 1):
        for line in (work / f"client{agency}.log").read_text().splitlines():
            if "action: fin_apuestas" in line:
                ends.append(stamp_of(line))
            elif "action: consulta_ganadores | result: success" in line:
                answers.append(stamp_of(line))
            elif "action: summary" in line:
                bets += int(re.search(r"bets: (\d+)", line).group(1))
    last_answer = max(answers)
    wall = last_answer - started
    return {
        "wall_s": wall,
        "bets_per_s": bets / wall,
        "end_to_winners_ms": (last_answer - max(ends)) * 1000,
        "server_cpu_s": usage.ru_utime + usage.ru_stime,
        "clients_cpu_s": client_cpu,
        "server_peak_pss_mb": sampler.peaks.get("server", 0) / 1024,
        "client_peak_pss_mb": sampler.peaks.get("client", 0) / 1024,
        "bets": bets,
        **scraped,
    }


def restore_seconds(work: Path) -> float:
    """How long restoring the last run's replica takes, with recovery and the check."""
    from storage import inspection, recover
    from storage.replica import normalized_url, replica_for, restore

    scratch = work / "restored"
    shutil.rmtree(scratch, ignore_errors=True)
    started = time.perf_counter()
    restore(scratch, replica_for(scratch, normalized_url(str(work / "replica")), "bench"))
    recover(scratch)
    ok, message = inspection.check(scratch)
    elapsed = time.perf_counter() - started
    if not ok:
        raise RuntimeError(f"the restored lottery does not check: {message}")
    shutil.rmtree(scratch, ignore_errors=True)
    return elapsed


def load_batches(data: Path, agencies: int, work: Path) -> list[tuple[int, list, int]]:
    """Every agency's batches as the client would send them (agency, bets, seq)."""
    out = []
    for agency in range(1, agencies + 1):
        source = BetSource(
            data / f"agency-{agency}.csv", agency, Rejects(work / "floor-rejects.csv")
        )
        bets = list(source.bets())
        out += [(agency, bets[b.seq : b.seq + b.count], b.seq) for b in batches(bets, 0, 128)]
    return out


def storage_run(batches_: list, work: Path, folder: str = "floor", offset: int = 0) -> float:
    """Seconds the store calls take for every batch, in one process (no network), grouped
    as the server groups a pipelining client's batches (WINDOW at a time per agency)."""
    import multiprocessing

    from client.agency import WINDOW

    storage = work / folder
    if offset == 0:
        shutil.rmtree(storage, ignore_errors=True)
        recover(storage)
    groups: list[tuple[int, list]] = []
    for agency, bets, seq in batches_:
        if offset:
            agency += offset
            bets = [b._replace(agency=agency) for b in bets]
        if groups and groups[-1][0] == agency and len(groups[-1][1]) < WINDOW:
            groups[-1][1].append((bets, seq))
        else:
            groups.append((agency, [(bets, seq)]))
    store = BetStore(storage, multiprocessing.get_context("fork").Lock())
    started = time.perf_counter()
    for agency, group in groups:
        storing.store_many(store, agency, group)
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed


def describe(values: list[float]) -> str:
    return f"{statistics.median(values):9.3f} {min(values):9.3f} {max(values):9.3f}"


# STATUS=1: the status listener on, scraped every 100 ms (/status.json and /metrics).
SCRAPE = os.environ.get("STATUS", "0") not in ("", "0")
# TLS=1: every run twice, in clear and over TLS, alternating (the same machine weather).
TLS = os.environ.get("TLS", "0") not in ("", "0")
# REPLICA=end|commit: the same, with Litestream replicating under that REPLICA_SYNC.
REPLICA = os.environ.get("REPLICA", "")
KEYS = [
    ("wall_s", "end to end, s"),
    ("bets_per_s", "bets per second"),
    ("end_to_winners_ms", "last END -> last winners, ms"),
    ("server_cpu_s", "server CPU, s"),
    ("clients_cpu_s", "clients CPU (all of them), s"),
    ("server_peak_pss_mb", "server peak PSS (all processes), MB"),
    ("client_peak_pss_mb", "client peak PSS, MB"),
]


def main() -> int:
    if REPLICA not in ("", "end", "commit"):
        print(f"error: REPLICA={REPLICA!r}: end or commit", file=sys.stderr)
        return 2
    runs = int(os.environ.get("BENCH_RUNS", "5"))
    out = Path(os.environ.get("BENCH_OUT", ROOT / ".data"))
    work = out / "bench"
    work.mkdir(parents=True, exist_ok=True)
    data = Path(os.environ["DATA"]) if os.environ.get("DATA") else work / "data"
    if not os.environ.get("DATA") and not (data / "agency-5.csv").exists():
        gen_data.main(["--agencies", "5", "--sizes", ",".join(map(str, SIZES)), "--out", str(data)])
    agencies = len(list(data.glob("agency-*.csv")))
    print(f"bench: {agencies} agencies from {data}, {runs} runs after a warm-up, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, status listener "
          f"{'on, scraped every 100 ms' if SCRAPE else 'off'}, "
          f"{'plaintext and TLS, alternating' if TLS else 'plaintext'}"
          f"{f', and with a replica (REPLICA_SYNC={REPLICA})' if REPLICA else ''}", flush=True)  # fmt: skip
    modes = {"plaintext": Mode()}
    if TLS:
        from scripts.lab.tls import make_certs

        modes["tls"] = Mode(certs=make_certs(work / "tls"))
    if REPLICA:
        modes[f"replica-{REPLICA}"] = Mode(replica_sync=REPLICA)
    for mode in modes.values():
        pipeline_run(data, agencies, work, mode)  # warm-up: page cache, pyc files
    by_mode = {name: [] for name in modes}
    restores = []
    for i in range(1, runs + 1):
        for mode, settings in modes.items():
            r = pipeline_run(data, agencies, work, settings)
            if settings.replica_sync:
                restores.append(restore_seconds(work))
            by_mode[mode].append(r)
            print(
                f"run {i} {mode:<9}: {r['bets']} bets in {r['wall_s']:.3f} s ({r['bets_per_s']:,.0f} bets/s), "
                f"last END -> last winners {r['end_to_winners_ms']:.1f} ms, server CPU "
                f"{r['server_cpu_s']:.2f} s (clients {r['clients_cpu_s']:.2f} s), peak PSS server {r['server_peak_pss_mb']:.1f} MB, "
                f"client {r['client_peak_pss_mb']:.1f} MB",
                flush=True,
            )
    floor_batches = load_batches(data, agencies, work)
    floors = [storage_run(floor_batches, work) for _ in range(runs)]
    growth = [storage_run(floor_batches, work, "growth", offset=10 * k) for k in range(10)]
    shutil.rmtree(work / "growth", ignore_errors=True)
    shutil.rmtree(work / "floor", ignore_errors=True)

    keys = list(KEYS)
    if SCRAPE:
        keys += [
            ("status_json_p50_ms", "/status.json during the run p50, ms"),
            ("status_json_max_ms", "/status.json during the run max, ms"),
            ("metrics_p50_ms", "/metrics during the run p50, ms"),
            ("metrics_max_ms", "/metrics during the run max, ms"),
        ]
    for mode, results in by_mode.items():
        print(f"\n{mode + ':':<38} {'median':>9} {'min':>9} {'max':>9}")
        for key, label in keys:
            print(f"{label:<38} {describe([r[key] for r in results])}")
    print()
    for other in [m for m in by_mode if m != "plaintext"]:
        for key, label in (("wall_s", "end to end"), ("server_cpu_s", "server CPU")):
            ratio = statistics.median(r[key] for r in by_mode[other]) / statistics.median(
                r[key] for r in by_mode["plaintext"]
            )
            print(f"{other + ' / plaintext, ' + label:<38} {ratio:9.2f} x (medians)")
    if restores:
        print(f"{'restore of the replica (+ check), s':<38} {describe(restores)}")
    print()
    print(f"{'storage only (floor), s':<38} {describe(floors)}")
    print(f"{'storage: 1st load into a growing db, s':<38} {growth[0]:9.3f}")
    print(
        f"{'storage: 10th load into it, s':<38} {growth[-1]:9.3f}  ({(growth[-1] / growth[0] - 1) * 100:+.1f}%)"
    )
    report = {
        "when": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "data": str(data),
        "status_scraped": SCRAPE,
        "runs": by_mode["plaintext"],
        "tls_runs": by_mode.get("tls", []),
        "replica_runs": by_mode.get(f"replica-{REPLICA}", []),
        "restore_s": restores,
        "storage_only_s": floors,
        "growing_db_loads_s": growth,
    }
    (out / "bench.json").write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out / 'bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
