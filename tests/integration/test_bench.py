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
