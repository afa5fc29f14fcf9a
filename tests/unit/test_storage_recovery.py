"""Start-up recovery makes bets.csv and bets.db agree, whatever was left behind."""

import csv

from scripts.lab import storing
from scripts.lab.sample import make_bets, mp_lock
from storage import BetStore, load_bets, recover
from storage.inspection import check
from storage.migrations import load_migrations


def stored(tmp_path, batches):
    recover(tmp_path)
    s = BetStore(tmp_path, mp_lock())
    for agency, bets in batches:
        storing.store(s, agency, bets)
    s.close()


def test_a_fresh_start_creates_both_files_and_does_nothing_else(tmp_path):
    latest = len(load_migrations())
    assert recover(tmp_path) == [f"migrated bets.db from schema version 0 to {latest}"]
    assert recover(tmp_path) == []
    assert check(tmp_path)[0]


def test_an_unacknowledged_tail_of_the_csv_is_cut_off(tmp_path):
    stored(tmp_path, [(1, make_bets(1, 0, 5))])
    with open(tmp_path / "bets.csv", "ab") as f:
        f.write(b"1,Torn,Li")
    assert recover(tmp_path) == ["cut 9 unacknowledged bytes off the end of bets.csv"]
    assert check(tmp_path) == (True, "bets.csv and bets.db agree: 5 bets")


def test_a_missing_csv_is_rebuilt_from_the_database(tmp_path):
    bets = make_bets(1, 0, 7) + make_bets(2, 0, 3)
    stored(tmp_path, [(1, bets[:7]), (2, bets[7:])])
    (tmp_path / "bets.csv").unlink()
    assert recover(tmp_path) == ["rebuilt bets.csv (missing) from bets.db: 10 bets"]
    assert list(load_bets(tmp_path / "bets.csv")) == bets
    assert check(tmp_path)[0]


def test_a_csv_shorter_than_recorded_is_rebuilt(tmp_path):
    stored(tmp_path, [(1, make_bets(1, 0, 7))])
    data = (tmp_path / "bets.csv").read_bytes()
    (tmp_path / "bets.csv").write_bytes(data[:-30])
    (done,) = recover(tmp_path)
    assert done.startswith("rebuilt bets.csv (") and done.endswith("7 bets")
    assert list(load_bets(tmp_path / "bets.csv")) == make_bets(1, 0, 7)


def test_a_csv_from_before_sqlite_is_imported_with_positions(tmp_path):
    bets = make_bets(1, 0, 4) + make_bets(2, 0, 2) + make_bets(1, 4, 1)
    with open(tmp_path / "bets.csv", "w", encoding="utf-8", newline="") as f:
        # The course's writer: csv.writer defaults, so \r\n line ends.
        csv.writer(f).writerows(
            (b.agency, b.first_name, b.last_name, b.document, b.birthdate.isoformat(), b.number)
            for b in bets
        )
        f.write("1,Half,a li")
    (done, _) = recover(tmp_path)[::-1]
    assert done.startswith("imported 7 bets from bets.csv") and "torn last line" in done
    assert check(tmp_path)[0]
    s = BetStore(tmp_path, mp_lock())
    assert (s.position(1), s.position(2)) == (5, 2)
    assert storing.store(s, 1, make_bets(1, 3, 3), seq=3).stored == 1
    s.close()
    assert check(tmp_path)[0]
