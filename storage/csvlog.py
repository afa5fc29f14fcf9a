"""bets.csv as an append-only log written at the offset the database records."""

import contextlib
import os
from pathlib import Path


class CsvLog:
    """The open bets.csv of one process. Errors are OSError; the caller translates them."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def write_at(self, offset: int, data: bytes) -> None:
        """Write data at offset and cut anything past it (a crashed earlier write's tail)."""
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, offset)
            view, offset = view[written:], offset + written
        if os.fstat(self._fd).st_size > offset:
            os.ftruncate(self._fd, offset)

    def cut_to(self, length: int) -> None:
        """Best effort after a failed write: recovery cuts the same tail at the next start."""
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, length)

    def flush(self) -> None:
        os.fdatasync(self._fd)

    def close(self) -> None:
        os.close(self._fd)
