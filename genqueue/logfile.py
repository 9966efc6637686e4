"""Size-bounded log files for the children of `genqueue up`.

A child writes into a pipe; a thread of the supervisor copies it, line by line, into
``name.log`` and rolls the file over to ``name.log.1`` … ``name.log.N`` when it would pass its
size. Copying (rather than handing the child the file) is what lets the file roll over at all:
a child cannot be told to reopen its stdout, and truncating a file under a writer loses lines.
"""

import os
import threading
from pathlib import Path
from typing import IO

LINE_LIMIT = 64 * 1024
"""A longer line is written in pieces of this size, so one file passes its size by no more."""


class RotatingLog:
    """Appends to ``path``; past ``max_bytes`` it becomes ``path.1`` (``path.1`` becomes
    ``path.2`` …) and only ``backups`` old files are kept."""

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        if max_bytes < 1 or backups < 0:
            raise ValueError("max_bytes must be >= 1 and backups >= 0")
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = path.open("ab")
        self._size = self._file.tell()

    def write(self, data: bytes) -> None:
        if self._size and self._size + len(data) > self.max_bytes:
            self._roll_over()
        self._file.write(data)
        self._file.flush()
        self._size += len(data)

    def close(self) -> None:
        self._file.close()

    def _roll_over(self) -> None:
        self._file.close()
        for n in range(self.backups, 0, -1):
            older = self._backup(n - 1) if n > 1 else self.path
            if older.exists():
                os.replace(older, self._backup(n))
        self._file = self.path.open("wb")  # truncates when no backup is kept
        self._size = 0

    def _backup(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")


def copy_lines(source: IO[bytes], log: RotatingLog, *, name: str) -> threading.Thread:
    """A thread that copies ``source`` into ``log`` until the end, then closes both."""

    def run() -> None:
        try:
            for line in iter(lambda: source.readline(LINE_LIMIT), b""):
                log.write(line)
        finally:
            source.close()
            log.close()

    thread = threading.Thread(target=run, name=f"log-{name}", daemon=True)
    thread.start()
    return thread
