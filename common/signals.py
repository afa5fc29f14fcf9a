"""Flag-only signal handling (the gunicorn way) plus a wake-up fd for poll loops."""

import contextlib
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15


class StopFlag:
    """Records a stop signal (SIGTERM/SIGINT by default); the main loop decides what to do.

    The handler only sets a flag. signal.set_wakeup_fd makes the signal also write a byte to
    a pipe, so a loop blocked in poll() on `wake_fd` wakes up at once.
    """

    def __init__(
        self,
        extra_signals: tuple[int, ...] = (),
        stop_signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT),
    ) -> None:
        self.signum: int | None = None
        self.wake_fd, self._write_fd = os.pipe()
        for fd in (self.wake_fd, self._write_fd):
            os.set_blocking(fd, False)
            os.set_inheritable(fd, False)
        signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for signum in stop_signals:
            signal.signal(signum, self._record)
        for signum in extra_signals:
            signal.signal(signum, self._wake_only)

    def _record(self, signum, frame) -> None:
        self.signum = signum

    def _wake_only(self, signum, frame) -> None:
        pass

    @property
    def stopping(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    def close(self) -> None:
        """Stop writing to the pipe and close it."""
        signal.set_wakeup_fd(-1)
        for fd in (self.wake_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


def reset_signals() -> None:
    """A forked child's first step: drop the handlers and wake-up fd it inherited."""
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGUSR1):
        signal.signal(signum, signal.SIG_DFL)


def die_with_parent(parent_pid: int) -> None:
    """Make the kernel SIGKILL this process when its parent dies (SIGKILL included).

    Linux only (prctl); elsewhere nothing watches the parent, and an orphan lives on until
    it is stopped. If the parent already died before the prctl, exit now.
    """
    if sys.platform.startswith("linux"):
        import ctypes  # only the server needs it; the client starts faster without

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def name_process(name: str) -> None:
    """Show this process as `name` in ps, top and /proc/<pid>/comm (Linux; 15 bytes at most)."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)
