"""Read-only figures of a running lottery for the status listener: counts only, never a
bettor's name or document. One read-only connection (WAL readers never block the writers),
no storage lock."""

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from storage.database import connect
from storage.paths import StoragePaths
from storage.transaction import translated

# Per agency 1..N its position: one seek of the UNIQUE (agency, seq) index each.
_POSITIONS = """
WITH RECURSIVE n(agency) AS (SELECT 1 UNION ALL SELECT agency + 1 FROM n WHERE agency < ?)
SELECT agency, (SELECT MAX(seq) + 1 FROM bets WHERE bets.agency = n.agency) FROM n
"""
# Per agency its winners, as the draw recorded them (migration 0007).
_WINNERS = "SELECT agency, COUNT(*) FROM draw_winners GROUP BY agency"


@dataclass(frozen=True)
class LiveFigures:
    lottery_id: str | None
    winning_number: int | None
    started_at: str | None
    drawn_at: str | None
    drawn_number: int | None
    positions: dict[int, int]  # agency -> bets stored
    finished: dict[int, str]  # agency -> when its END arrived
    told: frozenset[int]  # agencies sent their whole winners list


class LiveReader:
    """For one thread at a time (the caller serialises): sqlite3 objects may then cross
    threads."""

    def __init__(self, directory: str | Path) -> None:
        self._paths = StoragePaths(Path(directory))
        self._conn: sqlite3.Connection | None = None

    def figures(self, agencies: int) -> LiveFigures | None:
        """The lottery's figures now (None while there is no database)."""
        with translated("read the lottery's figures"):
            conn = self._connection()
            if conn is None:
                return None
            lottery = conn.execute(
                "SELECT lottery_id, winning_number, started_at FROM lottery"
            ).fetchone() or (None, None, None)
            draw = conn.execute("SELECT drawn_at, winning_number FROM draw").fetchone()
            positions = dict(conn.execute(_POSITIONS, (agencies,))) if agencies else {}
            return LiveFigures(
                lottery_id=lottery[0],
                winning_number=lottery[1],
                started_at=lottery[2],
                drawn_at=draw[0] if draw else None,
                drawn_number=draw[1] if draw else None,
                positions={a: n for a, n in positions.items() if n},
                finished=dict(conn.execute("SELECT agency, finished_at FROM agencies")),
                told=frozenset(r[0] for r in conn.execute("SELECT agency FROM deliveries")),
            )

    def winners(self) -> dict[int, int]:
        """Per agency its winners as the draw recorded them (none before it)."""
        with translated("count the winners"):
            conn = self._connection()
            return dict(conn.execute(_WINNERS)) if conn else {}

    def _connection(self) -> sqlite3.Connection | None:
        if self._conn is None and self._paths.db.exists():
            self._conn = connect(self._paths.db, read_only=True, any_thread=True)
        return self._conn
