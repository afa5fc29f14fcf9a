"""The replica's sync barrier, shared by every worker: one Litestream sync confirms every
commit made before it started, so concurrent committers wait for the same sync (group commit,
for confirmations) instead of each asking for its own."""

import time

from storage.replica import Replica, ReplicaUnconfirmed, confirm


class ReplicaBarrier:
    """Created by the acceptor before forking; every worker shares its counters and lock."""

    def __init__(self, ctx, replica: Replica, timeout_s: float, sync: str = "end") -> None:
        self.replica = replica
        self.timeout_s = timeout_s
        self.every_commit = sync == "commit"  # REPLICA_SYNC; else only rounds with an END
        self._committed = ctx.Value("Q", 0)  # commits made (its own lock: a short increment)
        self._confirmed = ctx.Value("Q", 0, lock=False)  # written under _syncing only
        self._syncing = ctx.Lock()  # one sync at a time

    def after_commit(self, has_ends: bool, meter) -> None:
        """Right after a round's commit: wait for the replica when REPLICA_SYNC wants it for
        this round (ReplicaUnconfirmed if it does not confirm); the meter keeps the result."""
        ticket = self.committed()
        if not (has_ends or self.every_commit):
            return
        try:
            self.confirm(ticket)
        except ReplicaUnconfirmed:
            meter.replica(confirmed=False)
            raise
        meter.replica(confirmed=True)

    def committed(self) -> int:
        """Call right after a commit returns: the ticket its confirmation waits for."""
        with self._committed.get_lock():
            self._committed.value += 1
            return self._committed.value

    def confirm(self, ticket: int) -> None:
        """Return once the replica holds the commit of that ticket: at once if a sync that
        began after it has completed, else after a sync of our own (covering every commit
        made when it begins); ReplicaUnconfirmed past timeout_s."""
        deadline = time.monotonic() + self.timeout_s
        if not self._syncing.acquire(timeout=self.timeout_s):
            raise ReplicaUnconfirmed("the replica did not confirm: a sync is stuck")
        try:
            if self._confirmed.value >= ticket:
                return
            target = self._committed.value  # every commit counted here has returned
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ReplicaUnconfirmed("the replica did not confirm in time")
            confirm(self.replica, remaining)
            self._confirmed.value = target
        finally:
            self._syncing.release()
