"""Reads whole messages from and writes whole messages to a connected stream socket.

A signal handler cannot interrupt a blocking recv (PEP 475 retries it), so a stream can also
watch a wake-up fd (see signal.set_wakeup_fd): when it becomes readable the caller's `stop`
predicate decides whether to give up waiting.
"""

import os
import select
import time
from collections.abc import Callable

from protocol import MAX_MESSAGE_BYTES, LineBuffer, ProtocolError

RECV_BYTES = 64 * 1024


class ConnectionClosed(Exception):
    """The peer closed the connection between two messages."""


class Interrupted(Exception):
    """A stop was requested while waiting."""


def wait_readable(fds: list[int], timeout: float | None) -> list[int]:
    """The fds among `fds` that are readable within timeout seconds (None: wait forever)."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    ms = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
    return [fd for fd, _ in poller.poll(ms)]


def drain(fd: int) -> None:
    """Empty a non-blocking wake-up fd."""
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


class MessageStream:
    """One connection: send bytes whole, read one line at a time with a deadline."""

    def __init__(
        self,
        sock,
        wake_fd: int | None = None,
        max_bytes: int = MAX_MESSAGE_BYTES,
        initial: bytes = b"",
    ):
        self._sock = sock
        self._wake_fd = wake_fd
        # initial: bytes an earlier reader of this connection received but did not consume.
        self._buffer = LineBuffer(max_bytes, initial)
        self._eof = False
        self._error: Exception | None = None  # found by ready_lines, raised by the next read

    @property
    def eof(self) -> bool:
        """Whether the peer closed its side (what was received before may still be read)."""
        return self._eof

    def take_error(self) -> Exception | None:
        """The error ready_lines found (an over-long message, a cut one), if any; clears it."""
        error, self._error = self._error, None
        return error

    def unread(self, lines: list[bytes]) -> None:
        """Give lines back: they are the next ones read."""
        self._buffer.unread(lines)

    def pending(self) -> bytes:
        """Received bytes not read as lines yet, for whoever reads this connection next."""
        return self._buffer.pending()

    def send(self, data: bytes) -> None:
        """Write every byte (sendall loops over short writes)."""
        self._sock.sendall(data)

    def read_line(self, timeout: float | None, stop: Callable[[bool], bool] | None = None) -> bytes:
        """The next complete line (without \\r\\n).

        Raises TimeoutError when no complete line arrives within timeout seconds,
        ConnectionClosed on EOF between messages, ProtocolError on EOF inside a message or an
        over-long one, and Interrupted when stop(has_partial) says so after a wake-up.
        """
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        deadline = None if timeout is None else time.monotonic() + timeout
        sock_fd = self._sock.fileno()
        fds = [sock_fd] if self._wake_fd is None else [sock_fd, self._wake_fd]
        while True:
            line = self._buffer.next_line()
            if line is not None:
                return line
            if self._eof:
                self._buffer.close()  # raises if a message was cut
                raise ConnectionClosed()
            if stop is not None and stop(self._buffer.has_partial):
                raise Interrupted()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError("no complete message before the deadline")
            ready = wait_readable(fds, remaining)
            if self._wake_fd is not None and self._wake_fd in ready:
                drain(self._wake_fd)
            if sock_fd in ready:
                self._receive()

    def ready_lines(self, limit: int) -> list[bytes]:
        """Up to limit more complete lines, from what is buffered or can be read without
        waiting (a pipelining peer's next messages). Errors wait for the next read_line."""
        lines: list[bytes] = []
        try:
            while len(lines) < limit:
                line = self._buffer.next_line()
                if line is not None:
                    lines.append(line)
                elif self._eof:
                    self._buffer.close()  # raises if a message was cut
                    break
                elif not wait_readable([self._sock.fileno()], 0):
                    break
                else:
                    self._receive()
        except (ProtocolError, OSError) as exc:
            self._error = exc
        return lines

    def _receive(self) -> None:
        data = self._sock.recv(RECV_BYTES)
        if not data:
            self._eof = True
            return
        self._buffer.feed(data)
        # TLS: plaintext OpenSSL has decrypted but not returned yet is invisible to poll.
        pending = getattr(self._sock, "pending", None)
        while pending is not None and pending() > 0:
            self._buffer.feed(self._sock.recv(RECV_BYTES))
