"""make bench-growth: does ingestion slow down as the lottery grows? Through the real pipeline.

GROWTH (default "1x1000000,10x1000000": agencies x bets each) lotteries, each streamed by
real agency clients into a fresh real server (uniform random numbers, `make data`'s files,
generated once into .data/bench/growth-<n>x<bets>/). Prints the ingest rate per tenth of the
bets (sampled from the database while it runs), the wall over a single-process floor with no
number index (the same batches stored by one process, no network, measured in the same run),
the draw's duration (the server's `draw_winners` line), last END -> last winners, and the
server's peak summed PSS. The figures go into .data/bench.json under "growth".
"""

import datetime
import itertools
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from client.batcher import batches
from client.reader import BetSource, Rejects
from scripts import gen_data
from scripts.bench import PeakSampler, free_port, stamp_of, start_server, wait_ping
from scripts.lab import storing

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_S = 0.25


class Sampler(threading.Thread):
    """(time, bets stored) every SAMPLE_S, from the highest rowid (cheap at any size)."""

    def __init__(self, db: Path) -> None:
        super().__init__(daemon=True)
        self.db, self.points, self.done = db, [], threading.Event()

    def run(self) -> None:
        self._conn = None
        while not self.done.wait(SAMPLE_S):
            self.sample()
        self.sample()  # the end: every bet stored

    def sample(self) -> None:
        try:
            if self._conn is None and self.db.exists():
                self._conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=1)
            if self._conn is not None:
                (top,) = self._conn.execute("SELECT COALESCE(MAX(id), 0) FROM bets").fetchone()
                self.points.append((time.monotonic(), top))
        except sqlite3.Error:
            pass  # mid-migration, or busy: the next sample


def tenths(points: list, started: float, total: int) -> list[float]:
    """Bets per second over each tenth of the lottery (when each tenth was reached,
    interpolated between the samples around it)."""
    samples = [(started, 0), *points]

    def reached(goal: int) -> float | None:
        for (t0, n0), (t1, n1) in itertools.pairwise(samples):
            if n1 >= goal:
                return t0 + (goal - n0) * (t1 - t0) / max(n1 - n0, 1)
        return None

    times = [started, *(reached(total * k // 10) for k in range(1, 11))]
    if None in times or total < 10:
        return []
    return [(total / 10) / max(b - a, 1e-9) for a, b in itertools.pairwise(times)]


def pipeline(data: Path, agencies: int, work: Path) -> dict:
    storage = work / "storage"
    shutil.rmtree(storage, ignore_errors=True)
    port = free_port()
    log_path = work / "server.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log:
        server = start_server(storage, port, agencies, log)
    wait_ping(port, server)
    peaks = PeakSampler()
    peaks.roots["server"] = server.pid
    peaks.start()
    sampler = Sampler(storage / "bets.db")
    sampler.start()
    started = time.monotonic()
    clients = []
    for agency in range(1, agencies + 1):
        out = open(work / f"client{agency}.log", "wb")
        clients.append((subprocess.Popen(
            [sys.executable, "-m", "client"],
            cwd=ROOT,
            env={**env, "CLI_ID": str(agency), "CLI_SERVER_ADDRESS": f"127.0.0.1:{port}",
                 "CLI_DATA_PATH": str(data / f"agency-{agency}.csv"),
                 "CLI_REJECTS_PATH": str(work / f"rejects-{agency}.csv"),
                 "CLI_RETRY_MAXSECONDS": "120"},
            stdout=out, stderr=subprocess.STDOUT,
        ), out))  # fmt: skip
    codes = [proc.wait() for proc, _ in clients]
    wall = time.monotonic() - started
    for _, out in clients:
        out.close()
    sampler.done.set()
    sampler.join()
    peaks.done.set()
    peaks.join()
    server.send_signal(signal.SIGTERM)
    server.wait()
    if any(codes) or server.returncode:
        raise RuntimeError(f"a process failed: clients {codes}, server {server.returncode}")
    ends, answers = [], []
    for agency in range(1, agencies + 1):
        for line in (work / f"client{agency}.log").read_text().splitlines():
            if "action: fin_apuestas | result: success" in line:
                ends.append(stamp_of(line))
            elif "action: consulta_ganadores | result: success" in line:
                answers.append(stamp_of(line))
    draw = re.search(r"action: draw_winners \| result: success \| winners: (\d+) \| ms: ([\d.]+)",
                     log_path.read_text())  # fmt: skip
    total = sampler.points[-1][1] if sampler.points else 0
    return {
        "wall_s": wall,
        "bets": total,
        "rate_per_tenth": tenths(sampler.points, started, total),
        "draw_ms": float(draw.group(2)) if draw else None,
        "winners": int(draw.group(1)) if draw else None,
        "end_to_winners_ms": (max(answers) - max(ends)) * 1000,
        "server_peak_pss_mb": peaks.peaks.get("server", 0) / 1024,
    }


def floor(data: Path, agencies: int, work: Path) -> float:
    """Seconds the same batches take stored by one process, each in its own commit (CSV
    append, insert keyed by (agency, seq), commit, fsync): the unavoidable work, with no
    network and no index on the number."""
    import multiprocessing

    from storage import BetStore, recover

    folder = work / "floor"
    shutil.rmtree(folder, ignore_errors=True)
    recover(folder)
    store = BetStore(folder, multiprocessing.get_context("fork").Lock())
    seconds = 0.0
    for agency in range(1, agencies + 1):  # one agency in memory at a time
        source = BetSource(data / f"agency-{agency}.csv", agency, Rejects(work / "floor.rej"))
        bets = list(source.bets())
        pending = [(bets[b.seq : b.seq + b.count], b.seq) for b in batches(bets, 0, 128)]
        started = time.perf_counter()
        for batch in pending:
            storing.store_many(store, agency, [batch])
        seconds += time.perf_counter() - started
    store.close()
    shutil.rmtree(folder, ignore_errors=True)
    return seconds


def main() -> int:
    sizes = [tuple(int(x) for x in part.split("x")) for part in
             os.environ.get("GROWTH", "1x1000000,10x1000000").split(",")]  # fmt: skip
    out = Path(os.environ.get("BENCH_OUT", ROOT / ".data"))
    results = []
    for agencies, bets in sizes:
        work = out / "bench" / f"growth-{agencies}x{bets}"
        data = work / "data"
        if not (data / f"agency-{agencies}.csv").exists():
            print(f"bench-growth: generating {agencies} x {bets:,} bets into {data} (once) …",
                  flush=True)  # fmt: skip
            gen_data.main(["--agencies", str(agencies), "--bets", str(bets), "--out", str(data)])
        print(f"bench-growth: {agencies} x {bets:,} bets through the real server …", flush=True)
        run = pipeline(data, agencies, work)
        run["floor_s"] = floor(data, agencies, work)
        run |= {"agencies": agencies, "bets_per_agency": bets}
        rates = run["rate_per_tenth"] or [float("nan")]
        print("  rate per tenth (bets/s): " + ", ".join(f"{r:,.0f}" for r in rates))
        print(f"  last tenth / first: {rates[-1] / rates[0]:.2f}; wall {run['wall_s']:.1f} s = "
              f"{run['wall_s'] / run['floor_s']:.2f} x the single-process floor "
              f"({run['floor_s']:.1f} s); draw {run['draw_ms']} ms ({run['winners']} winners); "
              f"last END -> last winners {run['end_to_winners_ms']:.0f} ms; server peak PSS "
              f"{run['server_peak_pss_mb']:.0f} MB", flush=True)  # fmt: skip
        results.append(run)
    report_path = out / "bench.json"
    try:
        report = json.loads(report_path.read_text())
    except (OSError, ValueError):
        report = {}
    report["growth"] = {"when": datetime.datetime.now().isoformat(timespec="seconds"),
                        "results": results}  # fmt: skip
    report_path.write_text(json.dumps(report, indent=2))
    print(f"wrote {report_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
