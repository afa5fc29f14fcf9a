"""make bench-scale: how fast a winners query is on a 10-million-bet database.

Builds (once; kept in .data/bench/scale/) a bets.db of SCALE_BETS bets (default 10,000,000)
over 5 agencies with uniform numbers, records the draw, then times storage's winners query
for every agency many times and prints median / max in milliseconds.
"""

import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

from domain import DEFAULT_WINNING_NUMBER
from scripts.lab import storing
from storage import BetStore, recover
from storage.database import connect

ROOT = Path(__file__).resolve().parent.parent
AGENCIES = 5


def build(folder: Path, total: int) -> None:
    """Fill a fresh database inside SQLite itself (no Python per row)."""
    recover(folder)
    conn = connect(folder / "bets.db")
    conn.execute("BEGIN")
    conn.execute(
        """
        WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
        INSERT INTO bets (agency, seq, first_name, last_name, document, birthdate, number,
                          received_at)
        SELECT i % ? + 1, i / ?, 'Nombre', 'Apellido', printf('%08d', 10000000 + i),
               '1990-01-01', (i * 7919 + i / 10007) % 10000, '2026-01-01T00:00:00.000Z'
        FROM n
        """,
        (total, AGENCIES, AGENCIES),
    )
    conn.execute("COMMIT")
    conn.close()


def main() -> int:
    total = int(os.environ.get("SCALE_BETS", "10000000"))
    folder = ROOT / ".data" / "bench" / f"scale-{total}"
    if not (folder / "bets.db").exists():
        print(
            f"bench-scale: building a database of {total:,} bets in {folder} (once) …", flush=True
        )
        started = time.monotonic()
        build(folder, total)
        print(f"built in {time.monotonic() - started:.1f} s", flush=True)
    recover(folder)  # brings a database built by older code up to the current schema
    store = BetStore(folder, multiprocessing.get_context("fork").Lock())
    for agency in range(1, AGENCIES + 1):
        storing.finish(store, agency, AGENCIES, DEFAULT_WINNING_NUMBER)
    times, found = [], []
    for _ in range(40):
        for agency in range(1, AGENCIES + 1):
            started = time.perf_counter()
            winners = store.winners(agency)
            times.append((time.perf_counter() - started) * 1000)
            found.append(len(winners))
    store.close()
    print(
        f"winners query on {total:,} bets: median {statistics.median(times):.2f} ms, "
        f"max {max(times):.2f} ms over {len(times)} queries "
        f"({min(found)}..{max(found)} winners per agency)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
