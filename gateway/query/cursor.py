"""Keyset cursors: the sort key of the last item of a page, as a short text token.

Event pages are ordered newest first by ``(occurred_at, id)``; the next page is every row
strictly below the cursor, so rows inserted while a client pages never repeat or shift an
item it has not seen yet. Recipient pages are ordered by address.

Tokens are ``e1.<microseconds since the epoch>.<id>`` and ``a1.<address>``. Clients treat
them as opaque; their shape is exactly ``EVENT_CURSOR_PATTERN`` / ``ADDRESS_CURSOR_PATTERN``
(published in the OpenAPI document), and every token of that shape decodes, so a cursor is
either well-formed and usable or a 400, never a 500.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.query.errors import QueryError

__all__ = [
    "ADDRESS_CURSOR_PATTERN",
    "EVENT_CURSOR_PATTERN",
    "MAX_CURSOR_LENGTH",
    "EventCursor",
    "decode_address_cursor",
    "encode_address_cursor",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_CURSOR_LENGTH = 2048
#: microseconds within datetime's range (years ~68 to ~8300), an id within bigint
EVENT_CURSOR_PATTERN = (
    r"^e1\.(-(?:[0-9]{1,16}|[0-5][0-9]{16})|[0-9]{1,17}|1[0-9]{17})\.([0-9]{1,18})$"
)
ADDRESS_CURSOR_PATTERN = r"^a1\.([^\x00]+)$"
_EVENT = re.compile(EVENT_CURSOR_PATTERN)
_ADDRESS = re.compile(ADDRESS_CURSOR_PATTERN, re.DOTALL)


def _malformed() -> QueryError:
    return QueryError("cursor", "malformed cursor")


@dataclass(frozen=True)
class EventCursor:
    """The position after an event: its ``occurred_at`` and ``id``."""

    occurred_at: datetime
    id: int

    def encode(self) -> str:
        micros = (self.occurred_at - _EPOCH) // timedelta(microseconds=1)
        return f"e1.{micros}.{self.id}"

    @classmethod
    def decode(cls, token: str) -> EventCursor:
        match = _EVENT.fullmatch(token) if len(token) <= MAX_CURSOR_LENGTH else None
        if match is None:
            raise _malformed()
        micros, event_id = int(match.group(1)), int(match.group(2))
        return cls(_EPOCH + timedelta(microseconds=micros), event_id)


def encode_address_cursor(address: str) -> str:
    """The position after a recipient address (pages ordered by address)."""
    return f"a1.{address}"


def decode_address_cursor(token: str) -> str:
    match = _ADDRESS.fullmatch(token) if len(token) <= MAX_CURSOR_LENGTH else None
    if match is None:
        raise _malformed()
    return match.group(1)
