"""Counters and gauges in shared memory, for the status listener to read at scrape time.

One row per worker slot, written only by that slot's worker (no lock: one writer per cell; a
replacement worker goes on adding to its predecessor's row, so a restart never doubles or
loses a count), one row for the acceptor, and one byte per agency (connected or not). Created
before anything is forked; every process gets the same memory.
"""

import bisect
import time

# Upper bounds of lottery_commit_duration_seconds (Prometheus base unit: seconds).
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
RESULTS = ("success", "fail", "wait")
# results, commit count, sum, buckets, +Inf, then when the replica last confirmed / failed to
_WORKER_ROW = len(RESULTS) + 2 + len(COMMIT_BUCKETS) + 1 + 2
_CONFIRMED = _WORKER_ROW - 2
# The acceptor's row, by name.
ACCEPTOR_FIELDS = (
    "phase",  # 0 starting (recovery), 1 serving, 2 shutting down
    "heartbeat",  # time.time() of its loop's last tick
    "started",
    "parked",
    "held",
    "queued",
    "lent",
    "busy",
    "idle",
    "refused",
    "evicted",
    "replica",  # 0 off, 1 Litestream running, 2 not running (restarting)
)
REPLICA_OFF, REPLICA_RUNNING, REPLICA_DOWN = 0, 1, 2
STARTING, SERVING, STOPPING = 0, 1, 2
# The TLS terminator's row (one writer per cell; a restarted terminator goes on adding to it).
TLS_FIELDS = (
    "enabled",  # written by the acceptor, like "up"
    "up",  # 1 while a terminator serves the TLS port (0 between its death and restart)
    "handshakes",  # completed
    "failed",  # refused by OpenSSL (unknown CA, no shared suite, a broken record, ...)
    "timeouts",  # not completed within TLS_HANDSHAKE_TIMEOUT_S
    "plaintext",  # plaintext sent to the TLS port
    "evicted",  # closed to make room for a newer one (the in-progress cap)
    "in_progress",
    "connections",  # established, relayed to the acceptor
    "handshake_seconds",  # spent in handshake steps (CPU-bound work)
)


class Meters:
    def __init__(self, ctx, workers: int, agencies: int) -> None:
        self.workers = workers
        self._rows = ctx.Array("d", workers * _WORKER_ROW, lock=False)
        self._acceptor = ctx.Array("d", len(ACCEPTOR_FIELDS), lock=False)
        self._connected = ctx.Array("B", agencies + 1, lock=False)
        self._tls = ctx.Array("d", len(TLS_FIELDS), lock=False)
        self.set(phase=STARTING, started=time.time(), heartbeat=time.time())

    # --- the acceptor's side ------------------------------------------------------------

    def set(self, **values: float) -> None:
        for name, value in values.items():
            self._acceptor[ACCEPTOR_FIELDS.index(name)] = value

    def add(self, name: str, amount: float) -> None:
        self._acceptor[ACCEPTOR_FIELDS.index(name)] += amount

    def set_connected(self, agencies) -> None:
        """The agencies that have a connection now (ids out of range are ignored)."""
        flags = bytearray(len(self._connected))
        for agency in agencies:
            if 0 < agency < len(flags):
                flags[agency] = 1
        self._connected[:] = flags

    # --- the TLS terminator's side -----------------------------------------------------

    def set_tls(self, **values: float) -> None:
        for name, value in values.items():
            self._tls[TLS_FIELDS.index(name)] = value

    def add_tls(self, name: str, amount: float) -> None:
        self._tls[TLS_FIELDS.index(name)] += amount

    # --- a worker's side ----------------------------------------------------------------

    def worker(self, slot: int) -> "WorkerMeter":
        return WorkerMeter(self._rows, slot * _WORKER_ROW)

    # --- the reader's side --------------------------------------------------------------

    def acceptor(self) -> dict[str, float]:
        return dict(zip(ACCEPTOR_FIELDS, self._acceptor[:], strict=True))

    def tls(self) -> dict[str, float] | None:
        """The terminator's counts, or None when the lottery port speaks plaintext."""
        values = dict(zip(TLS_FIELDS, self._tls[:], strict=True))
        return values if values["enabled"] else None

    def connected(self) -> bytes:
        return bytes(self._connected[:])

    def totals(self) -> dict:
        """Batches by result and the commit histogram, summed over every worker slot."""
        rows = self._rows[:]
        summed = [
            sum(rows[s * _WORKER_ROW + i] for s in range(self.workers)) for i in range(_WORKER_ROW)
        ]
        n = len(RESULTS)
        slots = range(self.workers)
        return {
            "batches": dict(zip(RESULTS, summed[:n], strict=True)),
            "commits": summed[n],
            "commit_seconds": summed[n + 1],
            "buckets": summed[n + 2 : _CONFIRMED],  # per bucket, not cumulative; last is +Inf
            # The latest time.time() any worker's barrier was confirmed / was not.
            "replica_confirmed": max(
                (rows[s * _WORKER_ROW + _CONFIRMED] for s in slots), default=0
            ),
            "replica_unconfirmed": max(
                (rows[s * _WORKER_ROW + _CONFIRMED + 1] for s in slots), default=0
            ),
        }


class WorkerMeter:
    """One worker's row. A cell has one writer, so += needs no lock."""

    def __init__(self, rows, base: int) -> None:
        self._rows, self._base = rows, base

    def batch(self, result: str) -> None:
        self._rows[self._base + RESULTS.index(result)] += 1

    def commit(self, seconds: float) -> None:
        base = self._base + len(RESULTS)
        self._rows[base] += 1
        self._rows[base + 1] += seconds
        self._rows[base + 2 + bisect.bisect_left(COMMIT_BUCKETS, seconds)] += 1

    def replica(self, confirmed: bool) -> None:
        """A sync barrier's result, as the time it happened."""
        self._rows[self._base + _CONFIRMED + (0 if confirmed else 1)] = time.time()


class NoMeter:
    """For sessions and commits measured by nobody (tests, benches)."""

    def batch(self, result: str) -> None:
        pass

    def commit(self, seconds: float) -> None:
        pass

    def replica(self, confirmed: bool) -> None:
        pass
