"""make chaos: random faults against a real lottery for a bounded time, verified each round.

CHAOS_SECONDS (default 60) bounds the run; CHAOS_SEED replays one (the seed is printed).
Each round: a few agencies with random sizes, one server and its clients on 127.0.0.1, and
random faults while they run (server SIGKILL, a fault point inside storage, SIGTERM, files
damaged between runs, a client SIGKILLed and rerun, a connection cut mid-message, a second
connection for the same agency); then the verdict of the fault suite: every bet stored
exactly once in file order, bets.csv and bets.db agree, one draw logged, right winners.
"""

import contextlib
import os
import random
import signal
import socket
import sys
import tempfile
import time
import traceback
from pathlib import Path

from protocol import Bets, encode
from scripts.lab.lottery import Lottery
from scripts.lab.processes import Peer, Server, stop_quietly
from storage import read_lottery
from storage.store import FAULT_POINTS


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def damage(rng: random.Random, data: Path, drawn: bool) -> str:
    """Hurt the storage files between two server runs, as a crash or a person might."""
    choice = rng.choice(["delete_db", "torn_csv_line", "short_csv", "nothing"])
    csv_path = data / "bets.csv"
    if choice == "delete_db" and drawn:
        # Not promised (README "Guarantees"): the draw and the finished agencies live only in
        # bets.db, and agencies already told their winners never send END again.
        choice = "nothing (bets.db kept: the draw happened)"
    if choice == "delete_db":
        for name in ("bets.db", "bets.db-wal", "bets.db-shm"):
            (data / name).unlink(missing_ok=True)
    elif choice == "torn_csv_line":
        with open(csv_path, "ab") as f:
            f.write(b"1,Torn,Li")
    elif choice == "short_csv" and csv_path.stat().st_size > 200:
        os.truncate(csv_path, csv_path.stat().st_size - rng.randint(1, 200))
    return choice


def one_round(rng: random.Random, folder: Path) -> list[str]:
    """Run one lottery with random faults; raise AssertionError if the verdict fails."""
    done: list[str] = []
    servers: list[Server] = []

    def make_server(**env) -> Server:
        server = Server(folder / "data", folder / f"server{len(servers)}.log", **env)
        servers.append(server)
        return server

    sizes = {a: rng.randint(200, 3000) for a in range(1, rng.randint(2, 4) + 1)}
    lottery = Lottery(folder, make_server, sizes, batch=rng.choice([5, 10, 25, 60]))
    done.append(f"{len(sizes)} agencies, {sum(sizes.values())} bets, batch {lottery.batch}")
    try:
        env = {}
        if rng.random() < 0.4:
            point = rng.choice(FAULT_POINTS)
            nth = 1 if "draw" in point else rng.randint(1, 30)
            action = "kill-server" if rng.random() < 0.7 else "enospc"
            env["LOTTERY_FAULT"] = f"{point}:{nth}:{action}"
            done.append(f"storage fault {env['LOTTERY_FAULT']}")
        server = lottery.start_server(**env)
        lottery.start_clients()

        def clients_done() -> bool:
            return all(runs[-1][0].poll() is not None for runs in lottery.clients.values())

        for _ in range(rng.randint(1, 3)):
            target = lottery.received() + rng.randint(5, 80)
            current = server
            # Also done when every client has exited: a small lottery may never reach target.
            wait_until(
                lambda t=target, s=current: (
                    lottery.received() >= t or s.proc.poll() is not None or clients_done()
                ),
                30,
            )
            fault = rng.choice(["server_kill", "server_term", "client_kill", "cut", "second_conn"])
            if server.proc.poll() is not None:
                fault = "restart"  # the storage fault already killed it
            if fault in ("server_kill", "server_term", "restart"):
                if fault == "server_kill":
                    server.kill_hard()
                elif fault == "server_term":
                    server.stop(signal.SIGTERM)
                else:
                    server.wait()
                stored = read_lottery(server.storage_dir)  # the server is down: a quiet read
                hurt = damage(rng, server.storage_dir, stored is not None and stored.drawn)
                done.append(f"{fault} after {lottery.received()} batches, then {hurt}, restart")
                server = lottery.start_server()
            elif fault == "client_kill":
                agency = rng.choice(list(sizes))
                proc = lottery.clients[agency][-1][0]
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                    lottery.start_client(agency)
                    done.append(f"client {agency} SIGKILLed and rerun")
            elif fault == "cut":
                agency = rng.choice(list(sizes))
                with socket.create_connection(("127.0.0.1", lottery.port), timeout=5) as s:
                    wire = encode(Bets(tuple(lottery.bets[agency][:5]), 0))
                    s.sendall(wire[: rng.randint(1, len(wire) - 1)])
                done.append(f"connection of agency {agency} cut mid-message")
            else:
                agency = rng.choice(list(sizes))
                peer = Peer(lottery.port, timeout=5)
                with contextlib.suppress(OSError):
                    peer.request(Bets(tuple(lottery.bets[agency][:3]), 0))
                done.append(f"a second connection for agency {agency}")
        # A storage fault may still fire later (at the draw, say): restart the server then too.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and any(
            runs[-1][0].poll() is None for runs in lottery.clients.values()
        ):
            if server.proc.poll() is not None:
                server.wait()
                done.append("the storage fault killed the server; restart")
                server = lottery.start_server()
            time.sleep(0.02)
        lottery.wait_clients(timeout=10)
        lottery.verify()
        done.append("verified: exactly once, files agree, one draw, right winners")
    finally:
        for server in servers:
            stop_quietly(server)
        for runs in lottery.clients.values():
            for proc, _ in runs:
                if proc.poll() is None:
                    proc.kill()
    return done


def main() -> int:
    seconds = float(os.environ.get("CHAOS_SECONDS", "60"))
    seed = int(os.environ.get("CHAOS_SEED", str(random.randrange(1 << 32))))
    print(f"chaos: seed {seed} (replay with CHAOS_SEED={seed}), about {seconds:.0f} s", flush=True)
    rng = random.Random(seed)
    deadline = time.monotonic() + seconds
    rounds = 0
    while rounds == 0 or time.monotonic() < deadline:
        rounds += 1
        with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
            try:
                steps = one_round(rng, Path(tmp))
            except Exception:
                print(f"round {rounds}: FAILED (seed {seed})", flush=True)
                traceback.print_exc()
                for log in sorted(Path(tmp).glob("*.log")):
                    print(
                        f"--- {log.name} (last lines)\n"
                        + "\n".join(log.read_text().splitlines()[-15:])
                    )
                return 1
        print(f"round {rounds}: " + "; ".join(steps), flush=True)
    print(f"chaos: {rounds} rounds passed (seed {seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
