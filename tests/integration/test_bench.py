"""`make bench` keeps working: one small run end to end writes its figures."""

import json
import os
import subprocess
import sys

from scripts import gen_data
from scripts.lab.processes import ROOT


def test_bench_runs_the_pipeline_and_writes_its_figures(tmp_path):
    gen_data.main(["--agencies", "2", "--sizes", "300,120", "--out", str(tmp_path / "data")])
    result = subprocess.run(
        [sys.executable, "-m", "scripts.bench"],
        cwd=ROOT,
        env={
            **os.environ,
            "DATA": str(tmp_path / "data"),
            "BENCH_RUNS": "1",
            "BENCH_OUT": str(tmp_path),
            "TLS": "1",
            "REPLICA": "end",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "end to end, s" in result.stdout and "storage only (floor), s" in result.stdout
    report = json.loads((tmp_path / "bench.json").read_text())
    # TLS=1 and REPLICA=end: every mode, alternating; the replica restored after each run.
    assert len(report["restore_s"]) == 1
    for runs in (report["runs"], report["tls_runs"], report["replica_runs"]):
        (run,) = runs
        assert run["bets"] == 420
        assert run["wall_s"] > 0 and run["server_peak_pss_mb"] > 0 and run["end_to_winners_ms"] >= 0
    assert (
        "tls / plaintext, end to end" in result.stdout
        and "replica-end / plaintext" in result.stdout
    )
    assert len(report["growing_db_loads_s"]) == 10


def test_bench_growth_streams_through_the_real_pipeline_and_reports_per_tenth(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "scripts.bench_growth"],
        cwd=ROOT,
        env={**os.environ, "GROWTH": "2x3000", "BENCH_OUT": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (run,) = json.loads((tmp_path / "bench.json").read_text())["growth"]["results"]
    assert run["bets"] == 6000 and len(run["rate_per_tenth"]) == 10
    assert all(rate > 0 for rate in run["rate_per_tenth"])
    assert run["floor_s"] > 0 and run["draw_ms"] is not None and run["winners"] > 0
    assert "x the single-process floor" in result.stdout
