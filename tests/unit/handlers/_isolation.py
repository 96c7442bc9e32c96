"""Shared check for batch providers: a malformed item is rejected alone.

A batch ``[good, bad, good]`` must yield the good item's events twice and one
``RejectedItem`` for the bad one (index 1, the field named, the item as decoded), and
``parse_item`` must replay each item exactly as the batch normalized it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import pytest

from handlers.base import Adapter, PayloadError, SourceSpec, WebhookRequest

#: (JSON texts of the items) -> the request carrying them as one batch
BatchRequest = Callable[[list[bytes]], WebhookRequest]


def check_bad_item_is_rejected_alone(
    adapter: Adapter,
    source: SourceSpec,
    request_for: BatchRequest,
    *,
    good: bytes,
    bad: bytes,
    suffix: str,
    received_at: datetime,
    prefix: str = "",
) -> None:
    """``suffix`` is the bad field's path inside the item ("" when the item as a whole is
    wrong); ``prefix`` names the batch array in the body (Mandrill's ``mandrill_events``)."""
    alone = adapter.parse(request_for([good]), source, received_at)
    assert alone.events and not alone.rejected

    result = adapter.parse(request_for([good, bad, good]), source, received_at)
    assert result.events == alone.events + alone.events
    (rejected,) = result.rejected
    assert rejected.index == 1
    assert rejected.field == (f"{prefix}[1]{suffix}" if suffix else None)
    assert rejected.raw == json.loads(bad)
    assert rejected.reason

    with pytest.raises(PayloadError) as info:
        adapter.parse_item(rejected.raw, source, received_at)
    assert info.value.field == f"item{suffix}"
    assert adapter.parse_item(json.loads(good), source, received_at) == alone.events
