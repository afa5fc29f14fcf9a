"""BetStore: one truth across bets.csv and bets.db, exactly once per position."""

import csv
import errno
import sqlite3

import pytest

from scripts.lab import storing
from scripts.lab.sample import make_bets, mp_lock
from storage import (
    AgencyClosed,
    BetStore,
    ReplayMismatch,
    Round,
    SequenceGap,
    StorageError,
    load_bets,
    recover,
)
from storage.inspection import check
from storage.rows import rows_bytes


@pytest.fixture
def store(tmp_path):
    recover(tmp_path)
    s = BetStore(tmp_path, mp_lock())
    yield s
    s.close()


def stored_rows(tmp_path):
    with open(tmp_path / "bets.csv", encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def test_a_stored_batch_is_in_both_files_in_order(store, tmp_path):
    bets = make_bets(1, 0, 40)
    assert storing.store(store, 1, bets, seq=0).stored == 40
    assert list(load_bets(tmp_path / "bets.csv")) == bets
    assert check(tmp_path) == (True, "bets.csv and bets.db agree: 40 bets")


def test_csv_rows_are_six_columns_readable_by_the_reference_reader(store, tmp_path):
    storing.store(store, 1, make_bets(1, 0, 36), seq=0)
    rows = stored_rows(tmp_path)
    assert all(len(r) == 6 for r in rows)
    assert {r[2] for r in rows} >= {"Pérez, hijo", 'O"Brien', "Gómez;=%"}


def test_a_replayed_batch_stores_nothing(store, tmp_path):
    bets = make_bets(1, 0, 10)
    storing.store(store, 1, bets, seq=0)
    assert storing.store(store, 1, bets, seq=0).stored == 0
    assert storing.store(store, 1, bets[3:5], seq=3).stored == 0
    assert len(stored_rows(tmp_path)) == 10


def test_an_overlapping_batch_stores_only_the_new_tail(store, tmp_path):
    bets = make_bets(1, 0, 10)
    storing.store(store, 1, bets[:6], seq=0)
    result = storing.store(store, 1, bets[4:], seq=4)
    assert (result.stored, result.position) == (4, 10)
    assert list(load_bets(tmp_path / "bets.csv")) == bets


def test_a_gap_is_refused_naming_the_expected_position(store, tmp_path):
    storing.store(store, 1, make_bets(1, 0, 5), seq=0)
    with pytest.raises(SequenceGap, match="next expected position is 5") as info:
        storing.store(store, 1, make_bets(1, 7, 3), seq=7)
    assert info.value.expected == 5
    assert len(stored_rows(tmp_path)) == 5


def test_a_batch_without_seq_appends_at_the_position(store):
    storing.store(store, 2, make_bets(2, 0, 3), seq=0)
    assert storing.store(store, 2, make_bets(2, 3, 2)).position == 5
    assert store.position(2) == 5
    assert store.position(3) == 0


def test_positions_are_per_agency(store):
    storing.store(store, 1, make_bets(1, 0, 3), seq=0)
    storing.store(store, 2, make_bets(2, 0, 4), seq=0)
    storing.store(store, 1, make_bets(1, 3, 1), seq=3)
    assert (store.position(1), store.position(2)) == (4, 4)


def test_a_finished_agency_refuses_new_bets_but_accepts_replays(store):
    bets = make_bets(1, 0, 4)
    storing.store(store, 1, bets, seq=0)
    storing.finish(store, 1, agencies=2, winning_number=7574)
    assert storing.store(store, 1, bets, seq=0).stored == 0
    with pytest.raises(AgencyClosed, match="agency 1 already sent END"):
        storing.store(store, 1, make_bets(1, 4, 1), seq=4)
    assert store.position(1) == 4


def test_after_the_draw_every_agency_refuses_new_bets(store):
    storing.finish(store, 1, agencies=1, winning_number=7574)
    with pytest.raises(
        AgencyClosed, match=r"the draw already happened.*python -m storage new-lottery"
    ):
        storing.store(store, 2, make_bets(2, 0, 1), seq=0)


def test_a_group_of_batches_gives_each_the_outcome_it_would_have_alone(store, tmp_path):
    bets = make_bets(1, 0, 30)
    storing.store(store, 1, bets[:5], seq=0)
    outcomes = storing.store_many(
        store,
        1,
        [
            (bets[0:5], 0),  # replay
            (bets[3:10], 3),  # overlap: 5 new
            (bets[20:25], 20),  # gap
            (bets[10:15], 10),  # follows on
            (bets[15:20], None),  # plain append
        ],
    )
    assert [type(o).__name__ for o in outcomes] == [
        "Stored", "Stored", "SequenceGap", "Stored", "Stored"
    ]  # fmt: skip
    assert [o.stored for o in outcomes if not isinstance(o, Exception)] == [0, 5, 5, 5]
    assert outcomes[2].expected == 10
    assert list(load_bets(tmp_path / "bets.csv")) == bets[:20]
    assert check(tmp_path)[0]


def test_the_database_itself_refuses_a_duplicate_position(store, tmp_path):
    storing.store(store, 1, make_bets(1, 0, 1), seq=0)
    conn = sqlite3.connect(tmp_path / "bets.db")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO bets (agency, seq, first_name, last_name, document, birthdate, number)"
            " VALUES (1, 0, 'a', 'b', '1', '2000-01-01', 1)"
        )
    conn.close()


def test_a_write_error_stores_nothing_and_the_next_batch_succeeds(tmp_path):
    recover(tmp_path)
    failing = {"on": False}

    def disk_full(point):
        if point == "csv_written" and failing["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")

    s = BetStore(tmp_path, mp_lock(), fault=disk_full)
    storing.store(s, 1, make_bets(1, 0, 5), seq=0)
    failing["on"] = True
    with pytest.raises(StorageError, match="No space left on device"):
        storing.store(s, 1, make_bets(1, 5, 5), seq=5)
    assert s.position(1) == 5
    assert check(tmp_path)[0]
    failing["on"] = False
    assert storing.store(s, 1, make_bets(1, 5, 5), seq=5).stored == 5
    assert check(tmp_path) == (True, "bets.csv and bets.db agree: 10 bets")
    s.close()


def test_the_draw_happens_once_when_the_last_agency_finishes(store):
    assert storing.finish(store, 1, agencies=2, winning_number=7574).drew is False
    again = storing.finish(store, 1, agencies=2, winning_number=7574)
    assert (again.newly, again.drew, again.finished_count) == (False, False, 1)
    assert store.draw() is None
    last = storing.finish(store, 2, agencies=2, winning_number=7574)
    assert (last.newly, last.drew) == (True, True)
    assert store.draw().winning_number == 7574
    assert storing.finish(store, 2, agencies=2, winning_number=7574).drew is False
    assert store.draw_if_complete(2, 7574) is False
    assert store.finished_agencies() == {1, 2}


def test_winners_are_only_the_agencys_own_after_the_draw(store):
    storing.store(store, 1, make_bets(1, 0, 30, winners_every=10), seq=0)
    storing.store(store, 2, make_bets(2, 0, 30, winners_every=15), seq=0)
    assert store.winners(1) == []
    storing.finish(store, 1, 2, 7574)
    storing.finish(store, 2, 2, 7574)
    assert store.winners(1) == [b.document for b in make_bets(1, 0, 30, 10) if b.number == 7574]
    assert store.winners(2) == [b.document for b in make_bets(2, 0, 30, 15) if b.number == 7574]
    assert store.winners(3) == []


def test_row_lines_keep_one_entry_per_bet_even_for_a_field_with_a_line_break():

    from storage.rows import row_lines

    bets = make_bets(1, 0, 3)
    odd = [*bets[:1], bets[1]._replace(last_name="a\nb"), *bets[2:]]
    lines = row_lines(odd)
    assert len(lines) == 3 and b"".join(lines) == rows_bytes(odd)
    assert lines[1].startswith(b"1,") and b'"a\nb"' in lines[1]


def test_the_winners_query_is_one_range_of_the_draws_winners_and_a_seek_per_winner(store, tmp_path):
    from storage.store import WINNERS_SQL

    conn = sqlite3.connect(tmp_path / "bets.db")
    plan = conn.execute("EXPLAIN QUERY PLAN " + WINNERS_SQL, (1,)).fetchall()
    conn.close()
    details = " | ".join(row[-1] for row in plan)
    assert "SEARCH w USING PRIMARY KEY (agency=?)" in details
    assert "SEARCH b USING INDEX sqlite_autoindex_bets_1 (agency=? AND seq=?)" in details
    assert "SCAN" not in details and "TEMP B-TREE" not in details  # in seq order, no sort


def test_ingestion_keeps_no_index_on_the_number(store, tmp_path):
    conn = sqlite3.connect(tmp_path / "bets.db")
    indexes = [row[1] for row in conn.execute("PRAGMA index_list(bets)")]
    conn.close()
    assert indexes == ["sqlite_autoindex_bets_1"]  # UNIQUE (agency, seq): exactly once


def test_the_winners_are_whatever_number_is_drawn_after_ingestion(store):
    """Nothing stored before the draw depends on the winning number: draw any number."""
    bets = make_bets(1, 0, 200)
    for seq in range(0, 200, 50):
        storing.store(store, 1, bets[seq : seq + 50], seq=seq)
    number = bets[123].number  # decided only now
    storing.finish(store, 1, 1, number)
    assert store.winners(1) == [b.document for b in bets if b.number == number]


def test_one_round_commits_several_agencies_and_ends_each_with_its_own_outcome(store, tmp_path):
    one, two = make_bets(1, 0, 6), make_bets(2, 0, 4)
    storing.store(store, 2, two[:2], seq=0)
    committed = store.commit(
        Round(
            groups=[(1, [(one[:3], 0), (one[3:], 3)]), (2, [(two, 0), (two[3:], 9)])],
            ends=[1, 2],
            agencies=2,
            winning_number=7574,
        )
    )
    assert [[o.stored for o in committed.bets[0]], committed.bets[1][0].stored] == [[3, 3], 2]
    assert isinstance(committed.bets[1][1], SequenceGap)
    assert [(e.newly, e.drew) for e in committed.ends] == [(True, False), (True, True)]
    assert store.draw() is not None
    assert list(load_bets(tmp_path / "bets.csv")) == [*two[:2], *one, *two[2:]]
    assert check(tmp_path)[0]


def test_a_write_error_in_a_round_stores_nothing_of_it_and_records_no_end(tmp_path):
    recover(tmp_path)
    calls = []

    def full_disk(point):
        calls.append(point)
        if point == "csv_written":
            raise OSError(errno.ENOSPC, "No space left on device")

    store = BetStore(tmp_path, mp_lock(), fault=full_disk)
    with pytest.raises(StorageError, match="No space left"):
        store.commit(
            Round(
                groups=[(1, [(make_bets(1, 0, 3), 0)])], ends=[1], agencies=1, winning_number=7574
            )
        )
    assert store.position(1) == 0 and store.finished_agencies() == set()
    assert store.draw() is None and check(tmp_path)[0]
    store.close()


def test_a_replay_with_a_different_bet_is_refused_whole_naming_the_bet(store, tmp_path):
    bets = make_bets(1, 0, 10)
    storing.store(store, 1, bets[:7], seq=0)
    other = bets[6]._replace(number=(bets[6].number + 1) % 10_000)
    (outcome,) = storing.store_many(store, 1, [((*bets[5:6], other, *bets[7:]), 5)])
    assert isinstance(outcome, ReplayMismatch)
    assert (outcome.index, outcome.seq) == (2, 6)
    assert store.position(1) == 7  # the new tail was not stored either
    assert list(load_bets(tmp_path / "bets.csv")) == bets[:7]


def test_a_replay_of_positions_planned_earlier_in_the_same_round_is_verified(store):
    bets = make_bets(1, 0, 6)
    changed = bets[2]._replace(first_name="Otro")
    outcomes = storing.store_many(
        store, 1, [(bets[:4], 0), ((changed, bets[3]), 2), (bets[2:6], 2)]
    )
    assert isinstance(outcomes[1], ReplayMismatch) and outcomes[1].seq == 2
    assert [outcomes[0].stored, outcomes[2].stored] == [4, 2]


def test_a_batch_that_overlaps_nothing_runs_no_comparison_query(store, tmp_path):
    bets = make_bets(1, 0, 6)
    storing.store(store, 1, bets[:3], seq=0)
    statements = []
    store._conn.set_trace_callback(statements.append)
    storing.store(store, 1, bets[3:], seq=3)
    assert not any("SELECT seq, first_name" in s for s in statements)
    storing.store(store, 1, bets[2:], seq=2)
    assert any("SELECT seq, first_name" in s for s in statements)


def test_two_groups_of_one_agency_in_a_round_store_each_bet_once(store, tmp_path):
    bets = make_bets(1, 0, 8)
    committed = store.commit(
        Round(
            groups=[(1, [(bets[:5], 0)]), (1, [(bets[3:8], 3)]), (1, [(bets[:2], 0)])],
            ends=[],
            agencies=1,
            winning_number=7574,
        )
    )
    assert [g[0].stored for g in committed.bets] == [5, 3, 0]
    assert list(load_bets(tmp_path / "bets.csv")) == bets
    assert check(tmp_path)[0]
