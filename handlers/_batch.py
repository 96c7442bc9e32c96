"""Per-item isolation for batch bodies (private to ``handlers``).

A batch body that is well-formed as a whole (valid JSON, the expected container, not too
deep) is normalized item by item: an item that raises ``PayloadError`` becomes a
``RejectedItem`` (the gateway quarantines it) and every other item still yields its events.
The same item normalizer serves ``Adapter.parse_item``, so a quarantined item replays
exactly as it would have been normalized inside its batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from handlers.base import ParseResult, PayloadError, RejectedItem
from handlers.events import EmailEvent

__all__ = ["ITEM_PATH", "ItemNormalizer", "normalize_batch", "normalize_item"]

#: the path prefix of fields in ``PayloadError``s raised when replaying one item alone
ITEM_PATH = "item"

#: (item as decoded, its path in the body) -> the events it stands for
ItemNormalizer = Callable[[Any, str], list[EmailEvent]]


def normalize_batch(items: list[Any], normalize: ItemNormalizer, prefix: str = "") -> ParseResult:
    """Every item of a decoded batch through ``normalize``: the events of the good ones, a
    ``RejectedItem`` for each one that raised ``PayloadError`` (``prefix`` names the array,
    e.g. ``mandrill_events``; item paths are ``prefix[index]``)."""
    events: list[EmailEvent] = []
    rejected: list[RejectedItem] = []
    for index, item in enumerate(items):
        path = f"{prefix}[{index}]"
        try:
            events.extend(normalize(item, path))
        except PayloadError as exc:
            field = None if exc.field in (None, path) else exc.field
            rejected.append(RejectedItem(index=index, field=field, reason=str(exc), raw=item))
    return ParseResult(events=events, rejected=rejected)


def normalize_item(item: Any, normalize: ItemNormalizer) -> list[EmailEvent]:
    """One item on its own (``Adapter.parse_item``); field paths start at ``item``."""
    return normalize(item, ITEM_PATH)
