"""make status: a running server's /status.json as a short table for a terminal.

python -m scripts.status [--url http://127.0.0.1:8080] [--rows 20]
"""

import argparse
import json
import sys
import urllib.error
import urllib.request


def fetch(url: str) -> dict:
    with urllib.request.urlopen(f"{url.rstrip('/')}/status.json", timeout=5) as answer:
        return json.load(answer)


def table(status: dict, rows: int) -> str:
    """The reading as lines: the lottery, its totals, then the agencies not finished."""
    server = status["server"]
    lines = [f"server: {server['phase']}, {'ready' if server['ready'] else 'not ready'}, "
             f"up {server['uptime_s']:.0f} s"]  # fmt: skip
    lottery, totals = status["lottery"], status["totals"]
    if lottery is None:
        return "\n".join([*lines, "lottery: not open yet (recovering)"])
    drawn = f"drawn at {lottery['drawn_at']}" if lottery["drawn_at"] else "not drawn yet"
    lines += [
        f"lottery: {lottery['id'] or '(no id)'}, {lottery['agencies']} agencies, "
        f"winning number {lottery['winning_number']}, {drawn}",
        f"bets stored: {totals['bets']:,} ({status['rate_bets_per_s']:,.0f}/s over 10 s)",
        f"agencies: {totals['agencies_finished']} finished, {totals['agencies_told']} told, "
        f"{totals['agencies_connected']} connected",
        "connections: " + ", ".join(f"{v} {k}" for k, v in status["connections"].items())
        + f"; workers: {status['workers']['busy']} busy, {status['workers']['idle']} idle",
    ]  # fmt: skip
    if totals["winners"] is not None:
        lines.append(f"winners: {totals['winners']}")
    open_ = [a for a in status["agencies"] if not a["finished_at"]]
    if open_:
        lines += ["", f"{'agency':>6}  {'state':<17} {'bets':>8}  connected"]
        for a in open_[:rows]:
            state = "not connected yet" if a["state"] == "waiting" else a["state"]
            lines.append(
                f"{a['agency']:>6}  {state:<17} {a['bets']:>8}  {'yes' if a['connected'] else 'no'}"
            )
        if len(open_) > rows:
            lines.append(f"… and {len(open_) - rows} more not finished")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make status")
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--rows", type=int, default=20)
    args = parser.parse_args(argv)
    try:
        status = fetch(args.url)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        print(f"error: no status at {args.url}/status.json: {exc} (is the server running "
              "with STATUS_PORT set? make status STATUS_PORT=<port>)", file=sys.stderr)  # fmt: skip
        return 1
    print(table(status, args.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
