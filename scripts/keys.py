"""Create the agency keys `make run` and `make up` run with, where missing.

python -m scripts.keys --agencies N [--out .data/keys]

Writes <out>/agency-<i>.key (one random key each, for that agency's client only) and
<out>/agencies.keys (every agency's `<agency>:<key>` line, for the server's AGENCY_KEYS).
Keys already there are kept; every file is readable by its owner only.
"""

import argparse
import os
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _write_private(path: Path, text: str) -> None:
    # Created 0600 from the start: a key is never readable by others, even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)


def ensure_keys(folder: Path, agencies: int) -> Path:
    """Keys for agencies 1..N in folder (new ones only where missing); the server's file."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    lines = []
    for agency in range(1, agencies + 1):
        path = folder / f"agency-{agency}.key"
        if not path.exists():
            _write_private(path, secrets.token_urlsafe(32) + "\n")
        lines.append(f"{agency}:{path.read_text('utf-8').strip()}\n")
    server_file = folder / "agencies.keys"
    _write_private(server_file, "# <agency>:<key>, written by scripts/keys.py\n" + "".join(lines))
    return server_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.keys")
    parser.add_argument("--agencies", type=int, required=True)
    parser.add_argument("--out", type=Path, default=ROOT / ".data" / "keys")
    args = parser.parse_args(argv)
    if args.agencies < 1:
        print("error: --agencies must be at least 1", file=sys.stderr)
        return 2
    print(f"keys: {ensure_keys(args.out, args.agencies)} ({args.agencies} agencies)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
