"""The acceptor's side of the TLS terminator: start its process (and learn whether the
certificate and key loaded), take the connections it has established, stop it."""

import contextlib
import logging
import os
import socket
import time

from common.logs import event
from server.handoff import ChannelClosed
from transport.stream import wait_readable

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 10.0  # loading a certificate and binding a port take milliseconds
RESTART_PAUSE_S = 1.0  # before starting a terminator that died again (5 x after a failed start)
EXIT_CONFIG = 2


class TerminatorStartError(Exception):
    """The terminator could not start; `config` says whether the configuration is why."""

    def __init__(self, message: str, config: bool) -> None:
        super().__init__(message)
        self.config = config


def _terminator_main(*args) -> None:
    # Imported in the child: the acceptor never loads the ssl module, let alone the key.
    from server.tls.terminator import run_terminator

    run_terminator(*args)


class TerminatorProcess:
    def __init__(self, ctx, config, meters) -> None:
        self._ctx, self._config, self._meters = ctx, config, meters
        self.process = None
        self.channel: socket.socket | None = None
        self._restart_at: float | None = None

    def start(self, inherited: list) -> None:
        """Fork it and wait for `ready`; TerminatorStartError with its reason otherwise."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        args = (theirs, self._config, self._meters, os.getpid(), [*inherited, ours])
        self.process = self._ctx.Process(target=_terminator_main, name="tls", args=args)
        self.process.start()
        theirs.close()
        self.channel = ours
        message = b""
        if wait_readable([ours.fileno()], READY_TIMEOUT_S):
            with contextlib.suppress(OSError):
                message = ours.recv(4096)
        if message == b"ready":
            ours.setblocking(False)
            return
        self.stop(1.0)
        if message.startswith(b"error "):
            _, code, reason = message.decode(errors="replace").split(" ", 2)
            raise TerminatorStartError(reason, config=int(code) == EXIT_CONFIG)
        raise TerminatorStartError("the TLS process did not start", config=False)

    def died(self, restart: bool) -> None:
        """Its channel ended: reap it, and (unless the server is stopping) restart it after a
        pause. Its connections' socketpair ends see EOF: they close like any client that left."""
        code = self.stop(1.0)
        if restart:
            log.error(event("tls", "fail", error=f"the TLS process exited (code {code}); "
                            f"restarting in {RESTART_PAUSE_S:.0f}s"))  # fmt: skip
            self._restart_at = time.monotonic() + RESTART_PAUSE_S

    def restart_due(self, now: float) -> bool:
        return self._restart_at is not None and now >= self._restart_at

    def restart(self, inherited: list, now: float) -> bool:
        """Start a replacement; whether it runs (if not, it is tried again later)."""
        try:
            self.start(inherited)
        except Exception as exc:  # the port taken meanwhile, the files changed: keep trying
            log.error(event("tls", "fail", error=f"cannot restart the TLS process: {exc}"))
            self._restart_at = now + 5 * RESTART_PAUSE_S
            return False
        self._restart_at = None
        log.info(event("tls", "success", restarted=True))
        return True

    def fileno(self) -> int:
        return self.channel.fileno()

    def take(self) -> list[tuple[socket.socket, str]]:
        """The connections it has handed over since the last call (socket, peer);
        ChannelClosed once it is gone."""
        taken = []
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.channel, 256, 1)
            except BlockingIOError:
                return taken
            except OSError as exc:
                raise ChannelClosed(str(exc)) from None
            if not data:
                for sock, _ in taken:  # not admitted: they go with it
                    sock.close()
                raise ChannelClosed("the TLS process exited")
            for fd in fds:
                sock = socket.socket(fileno=fd)
                sock.setblocking(False)
                taken.append((sock, data.decode().removeprefix("conn ")))

    def stop_accepting(self) -> None:
        if self.channel is not None:  # else it died, and is not restarted while stopping
            with contextlib.suppress(OSError):
                self.channel.send(b"stop")

    def stop(self, timeout: float) -> int | None:
        """Close the channel (it sends close_notify on what is left and exits); its exit
        code, after SIGKILL if it took longer than timeout."""
        if self.channel is not None:
            # Said, not only closed: processes forked since (the Manager) hold the channel too.
            with contextlib.suppress(OSError):
                self.channel.send(b"exit")
            self.channel.close()
            self.channel = None
        if self.process is None:
            return None
        self.process.join(timeout)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join()
        return self.process.exitcode
