"""Make every event value storable by PostgreSQL, once, before it is batched or spooled.

PostgreSQL refuses some values a correctly signed webhook can carry: NUL characters (text
and jsonb), lone UTF-16 surrogates such as ``"\\ud800"`` (msgspec decodes them from JSON
escapes, UTF-8 cannot encode them, so neither the driver nor the spool's msgpack can), and
text over the btree index row limit (~2700 bytes) in an indexed column. This module fixes
those values at the model boundary:

* NUL and lone surrogates become U+FFFD in every text field, tag, metadata key/value and
  the raw payload;
* indexed text columns (``recipient``, ``message_id``, ``campaign``, each tag) are cut to
  ``INDEXED_MAX_CHARS`` characters, ending in ``~`` and a hash of the whole value so that
  distinct long values stay distinct (the full value stays in ``raw``);
* a dedup key longer than ``DEDUP_KEY_MAX_CHARS`` becomes ``provider:sha256:<hex>``. Short
  keys are kept as they are, so events stored before this existed still deduplicate.

``msgpack_safe`` is for the spool and the quarantine's event bytes only: JSON allows integers
beyond 64 bits and msgspec decodes them (PostgreSQL's jsonb keeps them exactly), but msgpack
cannot encode them, so there they become their decimal text.

The clean case (nearly every batch) costs one C-level JSON encoding of the whole batch and a
length check per event; only a batch that fails it is rebuilt event by event.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

import msgspec

from handlers.events import EmailEvent

__all__ = [
    "DEDUP_KEY_MAX_CHARS",
    "INDEXED_MAX_CHARS",
    "clean_json",
    "clean_text",
    "msgpack_safe",
    "storable_event",
    "storable_events",
]

#: characters of an indexed text column: 400 x 4 UTF-8 bytes (x 1.5 for lower()'s rare
#: growth) stays under the ~2700-byte btree row limit, with room for the other key columns
INDEXED_MAX_CHARS = 400
#: a dedup key longer than this is replaced by a digest. Generous on purpose: every key that
#: was storable before (ESP ids and content digests are under 100 characters) stays as it
#: was, so redeliveries of events stored before the upgrade are still duplicates
DEDUP_KEY_MAX_CHARS = 512
_HASH_CHARS = 16

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
_encode = msgspec.json.Encoder().encode


def clean_text(value: str) -> str:
    """``value`` with NUL and lone surrogates replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", value)


def _scalar(value: Any, big_ints_as_text: bool) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if big_ints_as_text and isinstance(value, int) and not _INT_MIN <= value <= _INT_MAX:
        return str(value)
    return value


def clean_json(value: Any, *, big_ints_as_text: bool = False) -> Any:
    """A JSON value (dicts, lists, scalars) with every string and key made storable (and
    with ``big_ints_as_text``, integers beyond 64 bits as their decimal text). Iterative:
    nesting depth costs no stack."""
    if not isinstance(value, dict | list | tuple):
        return _scalar(value, big_ints_as_text)
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while stack:
        source, target, slot = stack.pop()
        if isinstance(source, dict):
            copy: Any = {}
            items: Any = source.items()
        else:
            copy = [None] * len(source)
            items = enumerate(source)
        target[slot] = copy
        for key, item in items:
            if isinstance(source, dict) and isinstance(key, str):
                key = clean_text(key)
            if isinstance(item, dict | list | tuple):
                copy[key] = None
                stack.append((item, copy, key))
            else:
                copy[key] = _scalar(item, big_ints_as_text)
    return root[0]


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def _bounded(value: str) -> str:
    """An indexed column's value: at most ``INDEXED_MAX_CHARS``, distinct values distinct."""
    if len(value) <= INDEXED_MAX_CHARS:
        return value
    keep = INDEXED_MAX_CHARS - _HASH_CHARS - 1
    return f"{value[:keep]}~{_digest(value)[:_HASH_CHARS]}"


def _dedup_key(provider: str, key: str) -> str:
    if len(key) <= DEDUP_KEY_MAX_CHARS:
        return clean_text(key)
    return f"{clean_text(provider)[:40]}:sha256:{_digest(key)}"


def _opt(value: str | None) -> str | None:
    return clean_text(value) if value is not None else None


def _opt_bounded(value: str | None) -> str | None:
    return _bounded(clean_text(value)) if value is not None else None


def storable_event(event: EmailEvent) -> EmailEvent:
    """``event`` with every value made storable (a new event; the input is frozen)."""
    return msgspec.structs.replace(
        event,
        provider=clean_text(event.provider),
        source=clean_text(event.source),
        dedup_key=_dedup_key(event.provider, event.dedup_key),
        recipient=_opt_bounded(event.recipient),
        message_id=_opt_bounded(event.message_id),
        campaign=_opt_bounded(event.campaign),
        tags=tuple(_bounded(clean_text(tag)) for tag in event.tags),
        provider_event_id=_opt(event.provider_event_id),
        esp_event=_opt(event.esp_event),
        reason=_opt(event.reason),
        smtp_status=_opt(event.smtp_status),
        diagnostic=_opt(event.diagnostic),
        url=_opt(event.url),
        user_agent=_opt(event.user_agent),
        ip=_opt(event.ip),
        metadata=clean_json(event.metadata),
        raw=clean_json(event.raw),
    )


def msgpack_safe(event: EmailEvent) -> EmailEvent:
    """``event`` with integers beyond 64 bits in metadata and raw as decimal text (for
    msgpack, which cannot encode them; called only after an encoding failed)."""
    return msgspec.structs.replace(
        event,
        metadata=clean_json(event.metadata, big_ints_as_text=True),
        raw=clean_json(event.raw, big_ints_as_text=True),
    )


def _any_too_long(events: Sequence[EmailEvent]) -> bool:
    """Whether an indexed value of any event is over its bound (a plain loop: this runs
    for every batch)."""
    bound = INDEXED_MAX_CHARS
    for event in events:
        if (
            len(event.dedup_key) > DEDUP_KEY_MAX_CHARS
            or len(event.recipient or "") > bound
            or len(event.message_id or "") > bound
            or len(event.campaign or "") > bound
            or (event.tags and max(map(len, event.tags)) > bound)
        ):
            return True
    return False


def storable_events(events: Sequence[EmailEvent]) -> Sequence[EmailEvent]:
    """``events`` as they are when all are storable (the common case), else a copy in
    which every event is made storable."""
    try:
        clean = b"\\u0000" not in _encode(events)  # a lone surrogate raises here
    except UnicodeEncodeError:  # a lone surrogate
        clean = False
    if clean and not _any_too_long(events):
        return events
    return [storable_event(event) for event in events]
