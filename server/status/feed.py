"""The acceptor's side of the status listener: start and stop its process, and publish what
only the acceptor knows (places, workers, refusals, who is connected) into the meters."""

import os
import time

from server.meters import Meters


def start_status(ctx, config, meters: Meters, inherited: list):
    """The status listener's process, or None when STATUS_PORT is 0."""
    if not config.status_port:
        return None
    args = (config, meters, os.getpid(), inherited)
    process = ctx.Process(target=_status_main, name="status", args=args)
    process.start()
    return process


def _status_main(*args) -> None:
    # Imported in the child: the HTTP server and prometheus-client are the status process's
    # alone, never loaded into (and so inherited by) the acceptor and the workers.
    from server.status.listener import run_status

    run_status(*args)


def stop_status(process) -> bool:
    """SIGTERM, a short wait, then SIGKILL; whether there was one to stop."""
    if process is None:
        return False
    process.terminate()
    process.join(2)
    if process.exitcode is None:
        process.kill()
        process.join()
    return True


class Feed:
    """Called on every tick of the acceptor's loop (0.1 s); cheap: counts, and the connected
    agencies only when the table's owners changed."""

    def __init__(self, meters: Meters, table, pool, admission) -> None:
        self._meters, self._table, self._pool, self._admission = meters, table, pool, admission
        self._owners_seen = -1

    def publish(self) -> None:
        table, meters = self._table, self._meters
        held, queued = len(table.held), len(table.ready)
        parked = len(table.polled) - held
        workers = self._pool.workers.values()
        busy = sum(1 for w in workers if w.conn_ids)
        meters.set(
            heartbeat=time.time(),
            parked=parked,
            held=held,
            queued=queued,
            lent=len(table) - parked - held - queued,
            busy=busy,
            idle=len(workers) - busy,
            refused=self._admission.refused_total,
            evicted=self._admission.evicted_total,
        )
        if table.owners_version != self._owners_seen:
            self._owners_seen = table.owners_version
            meters.set_connected(table.owners)
