"""Numbered SQL migrations applied in order, each with its user_version bump atomically."""

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


class MigrationError(RuntimeError):
    """The schema cannot be brought up to date; the message says why."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations in a folder, checked to be numbered 1, 2, 3… without gaps."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.fullmatch(path.name)
        if match is None:
            raise MigrationError(f"migration file {path.name!r} is not named NNNN_slug.sql")
        found.append(Migration(int(match.group(1)), path.stem, path.read_text("utf-8")))
    for expected, migration in enumerate(found, 1):
        if migration.version != expected:
            raise MigrationError(f"migration {migration.name} should be number {expected:04d}")
    return found


def schema_version(conn: sqlite3.Connection) -> int:
    """The database's PRAGMA user_version."""
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, directory: Path = MIGRATIONS_DIR) -> tuple[int, int]:
    """Apply the pending migrations; return (version before, version after).

    The connection must be in autocommit mode (isolation_level=None). executescript() would
    commit an open transaction first, so each migration is wrapped in its own BEGIN…COMMIT,
    and rolled back whole if any statement fails.
    """
    migrations = load_migrations(directory)
    before = schema_version(conn)
    if before > len(migrations):
        raise MigrationError(
            f"database schema version {before} is newer than this code knows "
            f"({len(migrations)}); use a newer release or restore a matching backup"
        )
    for migration in migrations[before:]:
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{migration.sql}\n;"
                f"PRAGMA user_version = {migration.version};\nCOMMIT;"
            )
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise MigrationError(f"migration {migration.name} failed: {exc}") from exc
    return before, len(migrations)
