"""Fault injection for the fault suite and `make chaos`: never set in production.

LOTTERY_FAULT="<point>:<n>:<action>" makes each worker's storage fail at its n-th pass
through <point> (one of storage.store.FAULT_POINTS). Actions:
  kill-server  SIGKILL the whole server (its acceptor, hence every child and the Manager)
  kill-worker  SIGKILL only the worker process (the acceptor replaces it)
  enospc       raise "No space left on device" once, as a full disk would
"""

import errno
import os
import signal
from collections.abc import Callable

from storage.store import FAULT_POINTS

ACTIONS = ("kill-server", "kill-worker", "enospc")


class FaultSpecError(ValueError):
    """LOTTERY_FAULT is not <point>:<n>:<action>."""


def fault_hook(spec: str | None, acceptor_pid: int) -> Callable[[str], None] | None:
    """The storage fault hook a LOTTERY_FAULT value describes, or None."""
    if not spec:
        return None
    try:
        point, nth, action = spec.split(":")
        nth_pass = int(nth)
    except ValueError:
        raise FaultSpecError(f"LOTTERY_FAULT {spec!r} is not <point>:<n>:<action>") from None
    if point not in FAULT_POINTS:
        raise FaultSpecError(f"LOTTERY_FAULT point {point!r} is not one of {FAULT_POINTS}")
    if action not in ACTIONS:
        raise FaultSpecError(f"LOTTERY_FAULT action {action!r} is not one of {ACTIONS}")
    passes = {"count": 0}

    def hook(where: str) -> None:
        if where != point:
            return
        passes["count"] += 1
        if passes["count"] != nth_pass:
            return
        if action == "kill-server":
            os.kill(acceptor_pid, signal.SIGKILL)
        if action in ("kill-server", "kill-worker"):
            os.kill(os.getpid(), signal.SIGKILL)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return hook
