"""``BatchItems``: where a batching ESP keeps the items of a batch body, so tests can break
single items and check that exactly those are rejected."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["BatchItems", "Dumps", "RequiredField", "json_array", "top_level"]

#: JSON text of a value (``json.dumps`` by default; fuzzers pass their own)
Dumps = Callable[[Any], str]
#: an item -> the object and key of a field it must have (a string or an object)
RequiredField = Callable[[Any], tuple[dict[str, Any], str]]


@dataclass(frozen=True, slots=True)
class BatchItems:
    """How a batch body holds its items."""

    #: a batch body -> its items (decoded)
    items: Callable[[bytes], list[Any]]
    #: the items -> a batch body, JSON written by ``dumps``
    body: Callable[[list[Any], Dumps], bytes]
    #: an item -> a field it must have, to give it a value of the wrong type
    required: RequiredField


def top_level(key: str) -> RequiredField:
    """The required field is ``key`` of the item itself."""
    return lambda item: (item, key)


def _json_items(body: bytes) -> list[Any]:
    items = json.loads(body)
    return items if isinstance(items, list) else [items]  # one event sent unbatched


def _json_body(items: list[Any], dumps: Dumps = json.dumps) -> bytes:
    return dumps(items).encode()


def json_array(required: RequiredField) -> BatchItems:
    """A batch that is a JSON array of items (one object alone when unbatched)."""
    return BatchItems(_json_items, _json_body, required)
