"""``hookline worker`` runs the outbox workers but not the spool drainer: the spool belongs to
the gateway process that acknowledged the events (it is on that pod's volume), and that
process drains it whether or not it runs the outbox workers itself."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from gateway.ingest.spool import encode_record
from handlers import sendgrid
from hookline_testing import samples_for
from tests.integration.conftest import build_settings, serve

SPEC, KEY = samples_for("sendgrid").make_source("main")
SOURCES = [{"provider": "sendgrid", "name": "main", "signing_key": SPEC.signing_key}]


def spooled_segment(data_dir: Path, seed: int) -> set[str]:
    """Leave a spool segment under ``data_dir`` as a gateway that lost PostgreSQL would."""
    body = samples_for("sendgrid").example_body(3, seed=seed)
    request = samples_for("sendgrid").signed_request(SPEC, KEY, body, now=datetime.now(UTC))
    events = sendgrid.ADAPTER.parse(request, SPEC, datetime.now(UTC)).events
    spool = data_dir / "spool"
    spool.mkdir(parents=True)
    (spool / "seg-000000000001.log").write_bytes(encode_record(events))
    return {event.dedup_key for event in events}


async def stored_keys(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        return {row["dedup_key"] for row in await conn.fetch("SELECT dedup_key FROM events")}
    finally:
        await conn.close()


async def test_the_worker_leaves_the_spool_to_the_gateway_which_drains_it_without_workers(
    fresh_db_url: str, tmp_path: Path
) -> None:
    """A worker started on a data directory holding a spool segment reports its spool as
    disabled and leaves the segment alone; a gateway with ``[server] workers = false`` on
    that directory drains it into PostgreSQL."""
    keys = spooled_segment(tmp_path / "data", seed=77)
    segment = tmp_path / "data" / "spool" / "seg-000000000001.log"
    settings: Any = build_settings(fresh_db_url, tmp_path, sources=SOURCES)
    async with serve(settings, role="worker") as worker:
        ready = await worker.client.get("/readyz")
        assert ready.json()["spool"] == "disabled"
        assert worker.runtime.ingestor.spool is None
        assert "spool-drainer" not in {name for name, _ in worker.runtime.background}
        await asyncio.sleep(1.5)  # three drain intervals, had it had a drainer
        assert segment.exists()
        assert await stored_keys(fresh_db_url) == set()

    settings = build_settings(fresh_db_url, tmp_path, sources=SOURCES, server={"workers": False})
    async with serve(settings) as gateway:
        deadline = time.monotonic() + 30
        while await stored_keys(fresh_db_url) != keys and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert await stored_keys(fresh_db_url) == keys
        assert gateway.metric("hookline_spool_events") == 0
    assert not segment.exists()
