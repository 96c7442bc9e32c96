"""Replay one quarantined record once its cause is fixed.

Store stage: the kept event is written again through the normal store path (same dedup key,
so a replay that already happened is a no-op, same write hooks). Parse stage: the raw item
goes through ``Adapter.parse_item`` for its source, and the events it yields are stored.
On success the record is marked replayed; on failure the error is recorded on it and
``ReplayFailedError`` says why (the admin API answers 409 or 422).
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from gateway.ingest.isolation import IsolatingWriter
from gateway.sources import SourceTable
from gateway.storage.data_errors import is_data_error
from gateway.storage.quarantine import QuarantineEntry, QuarantineStore
from gateway.storage.storable import storable_events
from handlers.base import PayloadError
from handlers.events import EmailEvent
from handlers.registry import PROVIDERS, get_adapter

__all__ = ["ReplayFailedError", "Replayed", "replay_entry"]

log = structlog.get_logger("hookline.quarantine")


class ReplayFailedError(Exception):
    """The record cannot be replayed now. ``status``: 409 (a state to fix first: unknown
    source, already replayed) or 422 (the record itself is still refused)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Replayed:
    events: int
    new: int


async def replay_entry(
    entry: QuarantineEntry,
    store: QuarantineStore,
    writer: IsolatingWriter,
    sources: SourceTable,
) -> Replayed:
    if entry.replayed_at is not None:
        raise ReplayFailedError(409, f"record {entry.id} was already replayed")
    try:
        events = storable_events(_events(entry, sources))
        new = await writer.write_or_raise(events) if events else set()
    except ReplayFailedError as exc:
        await store.mark_failed(entry.id, exc.detail)
        raise
    except Exception as exc:
        if not is_data_error(exc):
            raise  # unavailability: nothing to record, the caller answers 503
        detail = f"{type(exc).__name__}: {exc}"
        await store.mark_failed(entry.id, detail)
        raise ReplayFailedError(422, detail) from exc
    await store.mark_replayed(entry.id)
    log.info("quarantine.replayed", id=entry.id, stage=entry.stage, events=len(events))
    return Replayed(events=len(events), new=len(new))


def _events(entry: QuarantineEntry, sources: SourceTable) -> list[EmailEvent]:
    if entry.stage == "store":
        if entry.event is None:
            raise ReplayFailedError(409, "the record keeps no event to replay")
        return [entry.event]
    source = sources.get(entry.provider, entry.source) if entry.provider in PROVIDERS else None
    if source is None:
        raise ReplayFailedError(
            409, f"source {entry.provider}/{entry.source} is not configured; cannot parse"
        )
    try:
        return get_adapter(entry.provider).parse_item(entry.raw, source.spec, entry.received_at)
    except PayloadError as exc:
        raise ReplayFailedError(422, f"still invalid: {exc}") from exc
