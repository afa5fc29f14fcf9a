"""Storage under real concurrent processes and real SIGKILLs."""

import collections
import contextlib
import multiprocessing
import os
import signal

import pytest

from scripts.lab import storing
from scripts.lab.sample import make_bets
from storage import BetStore, load_bets, recover
from storage.inspection import check

CTX = multiprocessing.get_context("fork")
BATCH = 20


def store_batches(directory, lock, agency, batches, with_seq):
    store = BetStore(directory, lock)
    for k in range(batches):
        bets = make_bets(agency, k * BATCH, BATCH)
        storing.store(store, agency, bets, seq=k * BATCH if with_seq else None)
    store.close()


def test_concurrent_writers_leave_every_batch_whole_and_contiguous(tmp_path):
    recover(tmp_path)
    lock = CTX.Lock()
    workers = [
        CTX.Process(target=store_batches, args=(tmp_path, lock, agency, 40, agency % 2 == 0))
        for agency in range(1, 6)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    assert check(tmp_path) == (True, f"bets.csv and bets.db agree: {5 * 40 * BATCH} bets")
    rows = list(load_bets(tmp_path / "bets.csv"))
    by_agency = collections.defaultdict(list)
    for index, bet in enumerate(rows):
        by_agency[bet.agency].append(index)
    for agency, indexes in by_agency.items():
        assert [rows[i] for i in indexes] == make_bets(agency, 0, 40 * BATCH)
        for k in range(0, len(indexes), BATCH):
            block = indexes[k : k + BATCH]
            assert block == list(range(block[0], block[0] + BATCH)), "a batch was interleaved"


def crashing_writer(directory, lock, point, crash_at, acks):
    current = {"batch": 0}

    def fault(where):
        if where == point and current["batch"] == crash_at:
            os.kill(os.getpid(), signal.SIGKILL)

    store = BetStore(directory, lock, fault=fault)
    for k in range(crash_at + 1):
        current["batch"] = k
        result = storing.store(store, 1, make_bets(1, k * BATCH, BATCH), seq=k * BATCH)
        acks.send((k, result.stored))


@pytest.mark.parametrize("point", ["csv_written", "before_commit", "committed"])
def test_a_writer_killed_mid_store_leaves_files_that_recover_to_one_truth(tmp_path, point):
    recover(tmp_path)
    receiver, sender = CTX.Pipe(duplex=False)
    crash_at = 3
    writer = CTX.Process(
        target=crashing_writer, args=(tmp_path, CTX.Lock(), point, crash_at, sender)
    )
    writer.start()
    writer.join(30)
    sender.close()
    assert writer.exitcode == -signal.SIGKILL
    acked = []
    with contextlib.suppress(EOFError):
        while True:
            acked.append(receiver.recv()[0])
    assert acked == list(range(crash_at))

    recover(tmp_path)
    assert check(tmp_path)[0]
    rows = list(load_bets(tmp_path / "bets.csv"))
    # Every acknowledged batch exactly once; the killed one is there whole only if it committed.
    expected = crash_at + (1 if point == "committed" else 0)
    assert rows == make_bets(1, 0, expected * BATCH)

    # The client's retry of the unacknowledged batch stores it exactly once.
    store = BetStore(tmp_path, CTX.Lock())
    storing.store(store, 1, make_bets(1, crash_at * BATCH, BATCH), seq=crash_at * BATCH)
    store.close()
    assert list(load_bets(tmp_path / "bets.csv")) == make_bets(1, 0, (crash_at + 1) * BATCH)
    assert check(tmp_path)[0]
