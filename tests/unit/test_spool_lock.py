"""One owner per spool directory: the flock of gateway/ingest/spool_lock.py."""

from __future__ import annotations

from pathlib import Path

from gateway.ingest.spool_lock import SpoolLock


async def test_a_held_spool_directory_cannot_be_taken_until_released(tmp_path: Path) -> None:
    """While one lock holds a spool directory another acquire gets None (a worker then does
    not drain it); once released, the next acquire gets it. Other directories are free."""
    directory = tmp_path / "spool"
    first = SpoolLock.try_acquire(directory)
    assert first is not None
    assert SpoolLock.try_acquire(directory) is None
    other = SpoolLock.try_acquire(tmp_path / "other-spool")
    assert other is not None
    await first.release()
    second = SpoolLock.try_acquire(directory)
    assert second is not None
    await second.release()
    await other.release()
