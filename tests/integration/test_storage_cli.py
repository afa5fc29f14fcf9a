"""The inspection views and `python -m storage` on a small known dataset."""

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.lab import storing
from scripts.lab.sample import make_bets, mp_lock
from storage import BetStore, Rules, open_lottery, read_lottery

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def lottery(tmp_path):
    """Lottery "L1" of 2 agencies. Agency 1: 30 bets, 3 winners, finished; agency 2: 20
    bets, 2 winners, finished."""
    open_lottery(tmp_path, Rules(lottery_id="L1", agencies=2, winning_number=7574), mp_lock())
    s = BetStore(tmp_path, mp_lock())
    storing.store(s, 1, make_bets(1, 0, 30, winners_every=10), seq=0)
    storing.store(s, 2, make_bets(2, 0, 20, winners_every=10), seq=0)
    storing.finish(s, 1, 2, 7574)
    storing.finish(s, 2, 2, 7574)
    s.close()
    return tmp_path


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "storage", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_views_count_bets_and_winners_per_agency(lottery):
    conn = sqlite3.connect(lottery / "bets.db")
    assert conn.execute("SELECT * FROM agency_summary").fetchall() == [
        (1, 30, 3, 1),
        (2, 20, 2, 1),
    ]
    winners = conn.execute("SELECT agency, document, number FROM winners").fetchall()
    assert winners == [
        (1, "20100000", 7574),
        (1, "20100010", 7574),
        (1, "20100020", 7574),
        (2, "20200000", 7574),
        (2, "20200010", 7574),
    ]


def test_stats_prints_one_line_per_agency_the_draw_and_the_lottery(lottery):
    out = run("--dir", str(lottery), "stats")
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert lines[1].split() == ["1", "30", "3", "yes"]
    assert lines[2].split() == ["2", "20", "2", "yes"]
    assert lines[3].startswith("draw: number 7574")
    assert lines[4].startswith("lottery: L1: 2 agencies, winning number 7574, started 20")
    assert lines[4].endswith("; drawn, not every agency told")


def test_winners_lists_only_that_agencys_documents(lottery):
    out = run("--dir", str(lottery), "winners", "--agency", "2")
    assert out.returncode == 0
    assert [line.split("\t")[0] for line in out.stdout.splitlines()] == ["20200000", "20200010"]


def test_check_passes_on_agreeing_files_and_names_the_first_difference(lottery):
    assert run("--dir", str(lottery), "check").returncode == 0
    csv_path = lottery / "bets.csv"
    data = csv_path.read_bytes()
    csv_path.write_bytes(data.replace(b"20100005", b"20100006", 1))
    out = run("--dir", str(lottery), "check")
    assert out.returncode == 1
    assert "row 6 differs" in out.stderr


def test_commands_on_a_missing_database_exit_1_with_a_message(tmp_path):
    out = run("--dir", str(tmp_path), "stats")
    assert out.returncode == 1
    assert "no database at" in out.stderr


def test_a_lottery_is_complete_only_once_each_of_its_own_agencies_got_its_winners(lottery):
    assert not read_lottery(lottery).complete  # drawn, nobody told yet
    store = BetStore(lottery, mp_lock())
    store.record_deliveries([1])
    assert not read_lottery(lottery).complete
    store.record_deliveries([2, 1])
    store.close()
    assert read_lottery(lottery).complete  # its 2 agencies, whatever a configuration says now


def test_new_lottery_archives_the_files_with_a_note_and_says_where(lottery):
    result = run("--dir", str(lottery), "new-lottery")
    assert result.returncode == 0, result.stderr
    (previous,) = (lottery / "previous").iterdir()
    assert str(previous) in result.stdout
    assert (previous / "bets.csv").exists() and (previous / "bets.db").exists()
    assert not (lottery / "bets.csv").exists() and not (lottery / "bets.db").exists()
    note = json.loads((previous / "lottery.json").read_text())
    assert {k: note[k] for k in ("lottery_id", "agencies", "winning_number", "bets", "reason")} == {
        "lottery_id": "L1",
        "agencies": 2,
        "winning_number": 7574,
        "bets": 50,
        "reason": "by hand",
    }
    assert note["drawn_at"] and note["finished"] == 2
    again = run("--dir", str(lottery), "new-lottery")
    assert again.returncode == 0 and "nothing to archive" in again.stdout


def test_stats_reads_an_archived_lottery_in_place_without_changing_it(lottery):
    assert run("--dir", str(lottery), "new-lottery").returncode == 0
    (previous,) = (lottery / "previous").iterdir()
    before = {p.name: p.read_bytes() for p in previous.iterdir() if p.name.startswith("bets")}
    out = run("--dir", str(previous), "stats")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1].split() == ["1", "30", "3", "yes"]
    assert "lottery: L1: 2 agencies" in out.stdout
    after = {p.name: p.read_bytes() for p in previous.iterdir() if p.name.startswith("bets")}
    assert after == before
