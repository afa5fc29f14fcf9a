"""Numbered migrations: in order, atomic, idempotent, and newer databases refused."""

import shutil
import sqlite3

import pytest

from storage.migrations import (
    MIGRATIONS_DIR,
    MigrationError,
    load_migrations,
    migrate,
    schema_version,
)

LATEST = len(load_migrations())


def connect(path):
    return sqlite3.connect(path, isolation_level=None)


def tables(conn):
    return {
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
    }


def partial_dir(tmp_path, upto):
    folder = tmp_path / f"migrations_{upto}"
    folder.mkdir()
    for m in sorted(MIGRATIONS_DIR.glob("*.sql"))[:upto]:
        shutil.copy(m, folder)
    return folder


def test_a_fresh_database_gets_every_migration(tmp_path):
    conn = connect(tmp_path / "bets.db")
    assert migrate(conn) == (0, LATEST)
    assert schema_version(conn) == LATEST
    assert {"bets", "agencies", "draw", "csv_state", "winners", "agency_summary"} <= tables(conn)


def test_applying_twice_is_a_no_op(tmp_path):
    conn = connect(tmp_path / "bets.db")
    migrate(conn)
    before = tables(conn)
    assert migrate(conn) == (LATEST, LATEST)
    assert tables(conn) == before


@pytest.mark.parametrize("start", range(1, LATEST))
def test_upgrade_from_every_older_version_keeps_the_data(tmp_path, start):
    conn = connect(tmp_path / "bets.db")
    migrate(conn, partial_dir(tmp_path, start))
    conn.execute(
        "INSERT INTO bets (agency, seq, first_name, last_name, document, birthdate, number)"
        " VALUES (1, 0, 'Ana', 'Gómez', '123', '1990-01-01', 7574)"
    )
    assert migrate(conn) == (start, LATEST)
    assert conn.execute("SELECT COUNT(*) FROM bets").fetchone()[0] == 1
    assert conn.execute("SELECT bets FROM agency_summary").fetchall() == [(1,)]


def test_a_failing_migration_leaves_the_database_as_it_was(tmp_path):
    folder = partial_dir(tmp_path, 1)
    (folder / "0002_broken.sql").write_text(
        "CREATE TABLE half_done (x INTEGER);\nINSERT INTO no_such_table VALUES (1);\n"
    )
    conn = connect(tmp_path / "bets.db")
    with pytest.raises(MigrationError, match="0002_broken failed"):
        migrate(conn, folder)
    assert schema_version(conn) == 1
    assert "half_done" not in tables(conn)
    assert not conn.in_transaction


def test_a_database_newer_than_the_code_is_refused(tmp_path):
    conn = connect(tmp_path / "bets.db")
    migrate(conn)
    conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    with pytest.raises(MigrationError, match="newer than this code"):
        migrate(conn)


def test_migration_files_must_be_numbered_without_gaps(tmp_path):
    folder = partial_dir(tmp_path, 1)
    (folder / "0003_skip.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="should be number 0002"):
        load_migrations(folder)


def _legacy(tmp_path, drawn: bool):
    """A database at schema 5 (before lotteries recorded their rules) holding a lottery."""
    conn = connect(tmp_path / "bets.db")
    migrate(conn, partial_dir(tmp_path, 5))
    conn.execute(
        "INSERT INTO bets (agency, seq, first_name, last_name, document, birthdate, number,"
        " received_at) VALUES (1, 0, 'Ana', 'Gómez', '123', '1990-01-01', 7574,"
        " '2026-11-30T10:00:00.000Z')"
    )
    conn.execute("INSERT INTO agencies VALUES (1, 'x'), (2, 'y')")
    if drawn:
        conn.execute("INSERT INTO draw (id, drawn_at, winning_number) VALUES (1, 'z', 42)")
    return conn


def test_a_drawn_lottery_from_before_0006_records_the_rules_its_data_shows(tmp_path):
    conn = _legacy(tmp_path, drawn=True)
    migrate(conn)
    assert conn.execute(
        "SELECT lottery_id, agencies, winning_number, started_at FROM lottery"
    ).fetchall() == [("", 2, 42, "2026-11-30T10:00:00.000Z")]


def test_an_undrawn_lottery_from_before_0006_leaves_its_rules_unknown(tmp_path):
    conn = _legacy(tmp_path, drawn=False)
    migrate(conn)
    assert conn.execute("SELECT lottery_id, agencies, winning_number FROM lottery").fetchall() == [
        ("", None, None)
    ]


def test_an_empty_database_records_no_lottery_until_one_begins(tmp_path):
    conn = connect(tmp_path / "bets.db")
    migrate(conn)
    assert conn.execute("SELECT COUNT(*) FROM lottery").fetchone() == (0,)


def test_a_lottery_drawn_before_0007_keeps_its_winners_and_loses_the_number_index(tmp_path):
    conn = connect(tmp_path / "bets.db")
    migrate(conn, partial_dir(tmp_path, 6))
    rows = [(1, i, "A", "B", f"{i:08d}", "1990-01-01", 42 if i % 3 == 0 else 7) for i in range(9)]
    rows += [(2, 0, "C", "D", "99999999", "1990-01-01", 7)]
    conn.executemany(
        "INSERT INTO bets (agency, seq, first_name, last_name, document, birthdate, number)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.execute("INSERT INTO draw (id, drawn_at, winning_number) VALUES (1, 'z', 42)")
    migrate(conn)
    assert conn.execute("SELECT agency, seq FROM draw_winners").fetchall() == [
        (1, 0),
        (1, 3),
        (1, 6),
    ]
    assert [r[1] for r in conn.execute("SELECT agency, document FROM winners")] == [
        "00000000", "00000003", "00000006"
    ]  # fmt: skip
    summary = conn.execute("SELECT agency, bets, winners FROM agency_summary").fetchall()
    assert summary == [(1, 9, 3), (2, 1, 0)]
    names = {r[1] for r in conn.execute("PRAGMA index_list(bets)")}
    assert names == {"sqlite_autoindex_bets_1"}
