"""Splits a byte stream into lines, never buffering more than one message's worth."""

from protocol.errors import MessageTooLarge, ProtocolError
from protocol.messages import MAX_MESSAGE_BYTES


class LineBuffer:
    """Feed it bytes as they arrive; take complete lines (without \\r\\n) out of it."""

    def __init__(self, max_bytes: int = MAX_MESSAGE_BYTES, initial: bytes = b"") -> None:
        self._buf = bytearray(initial)
        self._max = max_bytes
        self._scanned = 0  # bytes already known to hold no \n

    def feed(self, data: bytes) -> None:
        """Add received bytes. An over-long line is reported by next_line, after every
        complete line before it: each of those still gets its answer."""
        self._buf += data

    def next_line(self) -> bytes | None:
        """The next complete line, or None until more bytes arrive; raises MessageTooLarge
        when the next line is over the cap (complete or not)."""
        end = self._buf.find(b"\n", self._scanned)
        if end < 0:
            self._scanned = len(self._buf)
            if len(self._buf) > self._max - 1:
                raise MessageTooLarge(f"message exceeds the {self._max}-byte limit")
            return None
        if end + 1 > self._max:
            raise MessageTooLarge(f"message exceeds the {self._max}-byte limit")
        line = bytes(self._buf[:end])
        del self._buf[: end + 1]
        self._scanned = 0
        return line[:-1] if line.endswith(b"\r") else line

    def unread(self, lines: list[bytes]) -> None:
        """Put lines taken out back in front, in order (a message that must wait its turn)."""
        if lines:
            self._buf[:0] = b"".join(line + b"\n" for line in lines)
            self._scanned = 0

    def pending(self) -> bytes:
        """Every byte not taken out yet (complete lines and a partial one)."""
        return bytes(self._buf)

    @property
    def has_partial(self) -> bool:
        """Whether part of a message is buffered (bytes received after the last \\n)."""
        return bool(self._buf)

    def close(self) -> None:
        """The peer closed: refuse a half-received message so it is never processed."""
        if self._buf:
            size = len(self._buf)
            self._buf.clear()
            raise ProtocolError(f"connection closed in the middle of a message ({size} bytes)")
