"""make restore-drill: restore the replica into a scratch folder and check it, without touching
the live lottery (Litestream's maintainers advise such drills regularly).

python -m scripts.restore_drill [--dir .data] [--replica .data-replica] [--lottery-id ID]

Restores the lottery's replica (its LOTTERY_ID, read from the live bets.db unless given) into
a temporary folder, runs PRAGMA integrity_check (restore does) and `python -m storage check`,
then compares bets, winners and ENDs per agency and the draw with the live lottery (read-only;
the live one may be ahead by what the replica has not received yet). Exit 0 when the restore
is sound, 1 otherwise.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

from storage import StorageError, inspection, read_lottery, recover
from storage.replica import normalized_url, replica_for, restore

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make restore-drill")
    parser.add_argument("--dir", type=Path, default=ROOT / ".data")
    parser.add_argument("--replica", default=str(ROOT / ".data-replica"))
    parser.add_argument("--lottery-id", default=None, help="default: the live lottery's")
    args = parser.parse_args(argv)
    try:
        live = read_lottery(args.dir)
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    lottery_id = args.lottery_id if args.lottery_id is not None else live.lottery_id if live else ""
    with tempfile.TemporaryDirectory(prefix="restore-drill-") as scratch:
        replica = replica_for(scratch, normalized_url(args.replica), lottery_id or "")
        started = time.monotonic()
        try:
            restored = restore(scratch, replica)
            if restored is None:
                print(f"error: {replica.url} holds no replica", file=sys.stderr)
                return 1
            recover(scratch)
        except StorageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        seconds = time.monotonic() - started
        ok, message = inspection.check(scratch)
        print(f"restored {restored.bets} bets from {restored.url} in {seconds:.2f} s "
              f"(integrity_check ok); check: {message}")  # fmt: skip
        if not ok:
            return 1
        return _compare(args.dir, Path(scratch)) if live is not None else 0


def _compare(live_dir: Path, restored_dir: Path) -> int:
    live_rows, live_draw = inspection.summary(live_dir)
    rows, draw = inspection.summary(restored_dir)
    restored = {r.agency: r for r in rows}
    print(
        f"{'agency':>6}  {'live bets':>9}  {'restored':>8}  {'winners':>7}  finished (live/restored)"
    )
    behind = False
    for row in live_rows:
        other = restored.get(row.agency)
        bets = other.bets if other else 0
        # The replica may lag the live lottery by what it has not received yet; never lead it.
        if bets > row.bets or (other and other.finished and not row.finished):
            print(f"error: agency {row.agency}: the replica holds more than the live lottery",
                  file=sys.stderr)  # fmt: skip
            return 1
        behind |= bets < row.bets or bool(row.finished and not (other and other.finished))
        print(f"{row.agency:>6}  {row.bets:>9}  {bets:>8}  {row.winners:>7}  "
              f"{'yes' if row.finished else 'no'}/{'yes' if other and other.finished else 'no'}")  # fmt: skip
    if live_draw is not None and draw is not None and draw != live_draw:
        print(f"error: the restored draw {draw} differs from the live one {live_draw}",
              file=sys.stderr)  # fmt: skip
        return 1
    print("draw: " + ("not yet" if draw is None else f"number {draw[1]} at {draw[0]}")
          + (" (the replica is behind the live lottery: normal while it runs)" if behind else ""))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
