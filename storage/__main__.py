"""python -m storage {stats | winners --agency N | check | new-lottery | restore}
[--dir STORAGE_DIR]"""

import argparse
import os
import sys
from pathlib import Path

from storage import StorageError, archive, inspection, read_lottery, recover
from storage.paths import StoragePaths
from storage.replica import normalized_url, replica_for, restore


def main(argv: list[str] | None = None) -> int:
    """Inspect the stored lottery; exit 1 when check finds a difference or data is missing."""
    parser = argparse.ArgumentParser(prog="python -m storage", description=__doc__)
    parser.add_argument(
        "--dir",
        default=os.environ.get("STORAGE_DIR", ".data"),
        help="where bets.csv and bets.db live (default: $STORAGE_DIR or .data)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "stats", help="per agency: bets, winners, finished; the draw and the lottery (read-only)"
    )
    win = commands.add_parser("winners", help="the winners of one agency")
    win.add_argument("--agency", type=int, required=True)
    commands.add_parser("check", help="bets.csv and bets.db hold the same rows")
    commands.add_parser(
        "new-lottery",
        help="archive the stored lottery under previous/<time>/ (stop the server first)",
    )
    rest = commands.add_parser(
        "restore", help="bring a lost bets.db back from its replica (stop the server first)"
    )
    rest.add_argument("--replica", default=os.environ.get("REPLICA_URL", ""),
                      help="the replica (default: $REPLICA_URL)")  # fmt: skip
    rest.add_argument("--lottery-id", default=os.environ.get("LOTTERY_ID", ""),
                      help="whose replica (default: $LOTTERY_ID; none: `default`)")  # fmt: skip
    args = parser.parse_args(argv)

    try:
        if args.command == "stats":
            rows, draw = inspection.summary(args.dir)
            print(f"{'agency':>6}  {'bets':>8}  {'winners':>7}  finished")
            for r in rows:
                print(
                    f"{r.agency:>6}  {r.bets:>8}  {r.winners:>7}  {'yes' if r.finished else 'no'}"
                )
            print("draw: not yet" if draw is None else f"draw: number {draw[1]} at {draw[0]}")
            print(describe(read_lottery(args.dir)))
        elif args.command == "winners":
            found = inspection.winners(args.dir, args.agency)
            for document, first, last in found:
                print(f"{document}\t{first} {last}")
            print(f"{len(found)} winners for agency {args.agency}", file=sys.stderr)
        elif args.command == "restore":
            return _restore(args)
        elif args.command == "new-lottery":
            moved = archive(args.dir)
            print(
                "no lottery stored: nothing to archive"
                if moved is None
                else f"previous lottery moved to {moved}; the next server start begins a new one"
            )
        else:
            ok, message = inspection.check(args.dir)
            print(message, file=sys.stdout if ok else sys.stderr)
            return 0 if ok else 1
    except (inspection.NoDatabase, StorageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _restore(args) -> int:
    if not args.replica:
        print("error: no replica: give --replica or set REPLICA_URL", file=sys.stderr)
        return 2
    replica = replica_for(args.dir, normalized_url(args.replica), args.lottery_id)
    if StoragePaths(Path(args.dir)).db.exists():
        print(f"error: {args.dir}/bets.db exists: nothing to restore (move it away first)",
              file=sys.stderr)  # fmt: skip
        return 1
    restored = restore(args.dir, replica)
    if restored is None:
        print(f"error: {replica.url} holds no replica", file=sys.stderr)
        return 1
    recover(args.dir)  # bets.csv rebuilt from the restored database
    kept = f"; the bets.csv that was there is {restored.moved_csv}" if restored.moved_csv else ""
    print(f"restored {restored.bets} bets from {restored.url} into {args.dir}{kept}")
    print(describe(read_lottery(args.dir)))
    return 0


def describe(lottery) -> str:
    """One line: which lottery this is and what it was started for."""
    if lottery is None:
        return "lottery: none stored"
    name = lottery.lottery_id or "(no id)"
    if lottery.agencies is None:
        rules = "rules not recorded (begun by an older version)"
    else:
        rules = f"{lottery.agencies} agencies, winning number {lottery.winning_number}"
    since = f", started {lottery.started_at}" if lottery.started_at else ""
    return f"lottery: {name}: {rules}{since}; {lottery.state()}"


if __name__ == "__main__":
    sys.exit(main())
