"""Opaque keyset cursors: the sort key of the last item of a page, base64url-encoded.

Event pages are ordered newest first by ``(occurred_at, id)``; the next page is every row
strictly below the cursor, so rows inserted while a client pages never repeat or shift an
item it has not seen yet. Recipient pages are ordered by address.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.query.errors import QueryError

__all__ = ["EventCursor", "decode_address_cursor", "encode_address_cursor"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EVENT_PREFIX = "e1"
_ADDRESS_PREFIX = "a1"


def _b64encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _b64decode(token: str) -> str:
    if not token or len(token) > 2048:
        raise QueryError("cursor", "malformed cursor")
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise QueryError("cursor", "malformed cursor") from None


@dataclass(frozen=True)
class EventCursor:
    """The position after an event: its ``occurred_at`` and ``id``."""

    occurred_at: datetime
    id: int

    def encode(self) -> str:
        micros = (self.occurred_at - _EPOCH) // timedelta(microseconds=1)
        return _b64encode(f"{_EVENT_PREFIX}:{micros}:{self.id}")

    @classmethod
    def decode(cls, token: str) -> EventCursor:
        prefix, _, rest = _b64decode(token).partition(":")
        micros_text, _, id_text = rest.partition(":")
        if prefix != _EVENT_PREFIX:
            raise QueryError("cursor", "malformed cursor")
        try:
            micros, event_id = int(micros_text), int(id_text)
            occurred_at = _EPOCH + timedelta(microseconds=micros)
        except (ValueError, OverflowError):
            raise QueryError("cursor", "malformed cursor") from None
        if not 0 <= event_id < 2**63:
            raise QueryError("cursor", "malformed cursor")
        return cls(occurred_at, event_id)


def encode_address_cursor(address: str) -> str:
    """The position after a recipient address (pages ordered by address)."""
    return _b64encode(f"{_ADDRESS_PREFIX}:{address}")


def decode_address_cursor(token: str) -> str:
    prefix, sep, address = _b64decode(token).partition(":")
    if prefix != _ADDRESS_PREFIX or not sep or "\x00" in address:
        raise QueryError("cursor", "malformed cursor")
    return address
