"""Which process owns a spool directory: an exclusive ``flock`` on ``spool/.lock``.

A gateway takes it when it opens its spool; ``hookline worker`` drains a spool directory
(left by a gateway that is gone) only when it can take it, so it never reads a segment a
running gateway is still appending to. The kernel drops the lock when its process dies, so a
crashed owner never blocks the next one.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

__all__ = ["SpoolLock"]


class SpoolLock:
    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def try_acquire(cls, directory: Path) -> SpoolLock | None:
        """The lock of ``directory`` (created if missing), or None when another open
        file description (another process, or another spool of this one) holds it."""
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return cls(fd)

    async def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
