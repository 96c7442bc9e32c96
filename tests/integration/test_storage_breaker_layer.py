"""The storage breaker is consulted in one layer, the writer every ingest write goes through
(``gateway/ingest/isolation.py``): while it is open, a webhook reaches no PostgreSQL write
yet is acknowledged from the spool, and once it closes the drainer stores the events."""

from __future__ import annotations

from typing import Any

import msgspec

from tests.integration.test_delivery_gateway import eventually
from tests.integration.test_poison_storage import SOURCES, item, rows, signed_json


async def test_an_open_storage_breaker_spools_through_the_writer(gateway_factory: Any) -> None:
    """With the storage breaker forced open, a signed webhook is a 200 whose events are in
    the spool, not in PostgreSQL, and the flush the writer refused is counted; closing the
    breaker lets the drainer store them."""
    async with gateway_factory(sources=SOURCES) as gw:
        assert not hasattr(gw.runtime.ingestor, "breaker"), "the ingestor holds no breaker"
        gw.runtime.storage_breaker.open()
        content, headers = signed_json(msgspec.json.encode([item(0), item(1)]))
        response = await gw.client.post("/webhooks/sendgrid/main", content=content, headers=headers)
        assert response.status_code == 200
        assert response.json()["accepted"] == 2
        assert gw.metric("hookline_spool_events") == 2
        assert gw.metric("hookline_storage_flush_failures_total") == 1
        assert await rows(gw.settings.database.url, "SELECT 1 FROM events") == []

        gw.runtime.storage_breaker.close()

        async def stored() -> bool:
            return len(await rows(gw.settings.database.url, "SELECT 1 FROM events")) == 2

        await eventually(stored)
