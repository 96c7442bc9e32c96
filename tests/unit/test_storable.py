"""gateway/storage/storable.py: which values change, how, and that clean batches do not."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.storage.storable import (
    DEDUP_KEY_MAX_CHARS,
    INDEXED_MAX_CHARS,
    clean_json,
    msgpack_safe,
    storable_event,
    storable_events,
)
from handlers.events import EmailEvent, EventType

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def event(**fields: Any) -> EmailEvent:
    values: dict[str, Any] = {
        "provider": "sendgrid",
        "source": "main",
        "event_type": EventType.DELIVERED,
        "occurred_at": NOW,
        "received_at": NOW,
        "recipient": "Ünïcode@example.com",
        "message_id": "m",
        "dedup_key": "sendgrid:abc",
        "tags": ("t",),
        "metadata": {"k": [1, "v"]},
        "raw": {"x": "é"},
    }
    values.update(fields)
    return EmailEvent(**values)


def test_a_clean_batch_is_returned_as_it_is() -> None:
    """The common case allocates nothing: the very same sequence comes back."""
    batch = [event(), event(dedup_key="sendgrid:def", recipient="x" * INDEXED_MAX_CHARS)]
    assert storable_events(batch) is batch


def test_nul_and_lone_surrogates_become_replacement_characters_everywhere() -> None:
    """Text fields, tags, metadata keys and values, raw (nested) are all cleaned."""
    (clean,) = storable_events(
        [
            event(
                reason="a\x00b",
                recipient="\ud800@example.com",
                tags=("t\udfff",),
                metadata={"k\x00": ["\ud800"]},
                raw={"a": [{"b\x00": "\udc00"}]},
            )
        ]
    )
    assert clean.reason == "a\ufffdb"
    assert clean.recipient == "\ufffd@example.com"
    assert clean.tags == ("t\ufffd",)
    assert clean.metadata == {"k\ufffd": ["\ufffd"]}
    assert clean.raw == {"a": [{"b\ufffd": "\ufffd"}]}


def test_long_indexed_values_are_cut_with_a_hash_that_keeps_them_distinct() -> None:
    """Over the bound: exactly INDEXED_MAX_CHARS, same prefix, different hash suffixes."""
    a, b = "p" * 5000 + "a", "p" * 5000 + "b"
    first = storable_event(event(message_id=a, campaign=a, tags=(a,)))
    second = storable_event(event(message_id=b))
    assert first.message_id is not None and second.message_id is not None
    assert len(first.message_id) == INDEXED_MAX_CHARS
    assert first.message_id != second.message_id
    assert first.message_id.startswith("p" * 100)
    assert first.campaign == first.message_id and first.tags == (first.message_id,)
    assert first.raw == event().raw  # raw is untouched; it keeps every full value


def test_only_long_dedup_keys_become_digests() -> None:
    """Short keys are kept (pre-upgrade events still deduplicate); long ones are digested,
    the same way every time."""
    short = "sendgrid:" + "k" * (DEDUP_KEY_MAX_CHARS - 9)
    assert storable_event(event(dedup_key=short)).dedup_key == short
    long_key = "sendgrid:" + "k" * 10_000
    digest = storable_event(event(dedup_key=long_key)).dedup_key
    assert digest.startswith("sendgrid:sha256:") and len(digest) == len("sendgrid:sha256:") + 64
    assert storable_event(event(dedup_key=long_key)).dedup_key == digest


def test_clean_json_handles_deep_nesting_without_recursion() -> None:
    """A payload nested far deeper than Python's recursion limit is walked iteratively."""
    deep: list[Any] = []
    cursor = deep
    for _ in range(5000):
        cursor.append([])
        cursor = cursor[0]
    cursor.append("\x00")
    out = clean_json(deep)
    for _ in range(5001):
        out = out[0]
    assert out == "\ufffd"


def test_msgpack_safe_writes_big_integers_as_their_digits() -> None:
    """Only for the spool: integers beyond 64 bits become text, others stay numbers."""
    safe = msgpack_safe(event(raw={"big": 2**70, "small": 5, "neg": -(2**63)}))
    assert safe.raw == {"big": str(2**70), "small": 5, "neg": -(2**63)}
