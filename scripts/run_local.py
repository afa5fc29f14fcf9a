"""make run: the server and N agency clients as local processes, output like compose.

python -m scripts.run_local [--agencies N] [--data .data] [--bets 16000] [--plaintext]

TLS with agency keys by default (certificates from `make certs` in <data>/tls, keys in
<data>/keys); --plaintext runs the lottery port in clear (keys still on).
"""

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from client.config import tls_context as tls_client_context
from scripts import gen_data, keys
from scripts.certs import CertsError, ensure_certs
from scripts.compose import fresh_lottery_id
from scripts.lab.processes import answers_ping
from storage.inspection import summary

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = re.compile(r"action: summary \| result: success \| (.*)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pump(proc: subprocess.Popen, prefix: str, lines: list[str], out_lock: threading.Lock) -> None:
    """Copy a process's output to ours, each line behind its source's name."""
    for raw in proc.stdout:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        lines.append(line)
        with out_lock:
            print(f"{prefix}| {line}", flush=True)


def start(name: str, module: str, env: dict, lines: list, out_lock):
    """Start `python -m module`; return the process and the thread copying its output."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    thread = threading.Thread(target=pump, args=(proc, f"{name:<9}", lines, out_lock), daemon=True)
    thread.start()
    return proc, thread


def wait_ready(port: int, server: subprocess.Popen, tls=None, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        if answers_ping(port, tls=tls):
            return True
        time.sleep(0.05)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run")
    parser.add_argument("--agencies", type=int, default=5)
    parser.add_argument("--data", type=Path, default=ROOT / ".data")
    parser.add_argument("--bets", type=int, default=16000, help="bets per agency if generating")
    parser.add_argument("--plaintext", action="store_true", help="no TLS on the lottery port")
    parser.add_argument(
        "--replica",
        default=None,
        help="where Litestream replicates bets.db (another disk, ideally; default: the data "
        "folder's name + -replica beside it, .data-replica); '' for none",
    )
    args = parser.parse_args(argv)
    data: Path = args.data.resolve()
    if args.agencies < 1:
        print("error: AGENCIES must be at least 1", file=sys.stderr)
        return 2
    missing = [i for i in range(1, args.agencies + 1) if not (data / f"agency-{i}.csv").exists()]
    if missing:
        print(
            f"run      | agency files missing ({len(missing)}): generating them (make data)",
            flush=True,
        )
        gen_data.main(
            ["--agencies", str(args.agencies), "--bets", str(args.bets), "--out", str(data)]
        )
    server_keys = keys.ensure_keys(data / "keys", args.agencies)
    replica = str(data.with_name(data.name + "-replica")) if args.replica is None else args.replica
    tls_env, client_tls, tls_context = {}, {}, None
    if not args.plaintext:
        try:
            certs = ensure_certs(data / "tls")
        except CertsError as exc:
            print(f"run      | error: {exc} (or run with TLS=0)", file=sys.stderr)
            return 1
        tls_env = {"TLS_CERT": str(certs["server.pem"]), "TLS_KEY": str(certs["server.key"])}
        client_tls = {"CLI_TLS_CA": str(certs["ca.pem"])}  # the CA only, never the key
        tls_context = tls_client_context(certs["ca.pem"])

    out_lock = threading.Lock()
    port, status_port = free_port(), free_port()
    server_lines: list[str] = []
    server, server_pump = start(
        "server",
        "server",
        {
            "SERVER_PORT": str(port),
            "STORAGE_DIR": str(data),
            "AGENCIES": str(args.agencies),
            # Each run is a fresh lottery: the server archives the stored one under previous/.
            "LOTTERY_ID": fresh_lottery_id(),
            "AGENCY_KEYS": str(server_keys),
            "STATUS_PORT": str(status_port),
            "REPLICA_URL": replica,
            **tls_env,
        },
        server_lines,
        out_lock,
    )
    # Ctrl-C reaches every process of the group; we only wait for them to finish.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not wait_ready(port, server, tls_context):
        print("run      | the server did not start (see its lines above)", file=sys.stderr)
        server.kill()
        return 1
    print(
        f"run      | status page: http://127.0.0.1:{status_port}/ (open it while it runs)",
        flush=True,
    )
    clients = {}
    for agency in range(1, args.agencies + 1):
        lines: list[str] = []
        env = {
            "CLI_ID": str(agency),
            "CLI_SERVER_ADDRESS": f"127.0.0.1:{port}",
            "CLI_DATA_PATH": str(data / f"agency-{agency}.csv"),
            "CLI_REJECTS_PATH": str(data / "rejects" / f"agency-{agency}.rejected.csv"),
            "CLI_KEY_PATH": str(data / "keys" / f"agency-{agency}.key"),
            **client_tls,
        }
        proc, thread = start(f"client{agency}", "client", env, lines, out_lock)
        clients[agency] = (proc, thread, lines)
    codes = {}
    for agency, (proc, thread, _) in clients.items():
        codes[agency] = proc.wait()
        thread.join()
    server.send_signal(signal.SIGTERM)
    server_code = server.wait()
    server_pump.join()
    print_summary(data, clients, codes, server_code)
    failed = [a for a, code in codes.items() if code != 0]
    if failed or server_code != 0:
        print(
            f"run      | failed: clients {failed or 'none'}, server exit {server_code}",
            file=sys.stderr,
        )
        return 1
    return 0


def print_summary(data: Path, clients, codes, server_code) -> None:
    rows, draw = summary(data)
    stored = {r.agency: r for r in rows}
    print()
    print(f"{'agency':>6}  {'read':>7}  {'stored':>7}  {'rejected':>8}  {'winners':>7}  exit")
    for agency, (_, _, lines) in clients.items():
        fields = {}
        for line in lines:
            if match := SUMMARY.search(line):
                fields = dict(part.split(": ", 1) for part in match.group(1).split(" | "))
        rejected = int(fields.get("rejected", 0))
        read = int(fields["bets"]) + rejected if "bets" in fields else "?"
        row = stored.get(agency)
        print(
            f"{agency:>6}  {read:>7}  {row.bets if row else 0:>7}  {rejected:>8}  "
            f"{row.winners if row else 0:>7}  {codes[agency]}"
        )
    print("draw: " + ("not done" if draw is None else f"number {draw[1]} at {draw[0]}"))
    print(f"server exit: {server_code}")


if __name__ == "__main__":
    sys.exit(main())
