"""Shared-memory meters: a worker's counts land in its own row, sums cover every row, and a
replacement worker on the same slot goes on from its predecessor's counts."""

import multiprocessing

from server.meters import COMMIT_BUCKETS, STOPPING, Meters

CTX = multiprocessing.get_context("fork")


def test_batches_and_commits_are_summed_over_every_worker_slot():
    meters = Meters(CTX, workers=3, agencies=4)
    meters.worker(0).batch("success")
    meters.worker(2).batch("success")
    meters.worker(2).batch("wait")
    meters.worker(1).commit(0.003)
    meters.worker(1).commit(10.0)  # past the last bound: only +Inf
    totals = meters.totals()
    assert totals["batches"] == {"success": 2, "fail": 0, "wait": 1}
    assert totals["commits"] == 2 and abs(totals["commit_seconds"] - 10.003) < 1e-9
    assert len(totals["buckets"]) == len(COMMIT_BUCKETS) + 1
    assert totals["buckets"][COMMIT_BUCKETS.index(0.005)] == 1 and totals["buckets"][-1] == 1


def test_a_forked_worker_writes_what_the_parent_reads():
    meters = Meters(CTX, workers=2, agencies=2)

    def work():
        for _ in range(5):
            meters.worker(1).batch("fail")

    for _ in range(2):  # a worker, then its replacement on the same slot
        child = CTX.Process(target=work)
        child.start()
        child.join(10)
    assert meters.totals()["batches"]["fail"] == 10


def test_the_acceptor_row_and_the_connected_agencies():
    meters = Meters(CTX, workers=1, agencies=3)
    meters.set(phase=STOPPING, parked=4)
    meters.set_connected({1, 3, 99})  # out of range: ignored
    assert meters.acceptor()["phase"] == STOPPING and meters.acceptor()["parked"] == 4
    assert meters.connected() == bytes([0, 1, 0, 1])


def test_the_tls_row_is_none_until_enabled_and_a_forked_terminator_adds_to_it():
    meters = Meters(CTX, workers=1, agencies=1)
    assert meters.tls() is None  # plaintext: nothing to show
    meters.set_tls(enabled=1, up=1)

    def terminate():
        meters.add_tls("handshakes", 3)
        meters.set_tls(in_progress=2, timeouts=1)

    child = CTX.Process(target=terminate)
    child.start()
    child.join()
    tls = meters.tls()
    assert (tls["handshakes"], tls["in_progress"], tls["timeouts"], tls["up"]) == (3, 2, 1, 1)
