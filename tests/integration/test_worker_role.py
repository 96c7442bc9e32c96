"""``hookline worker`` runs the background workers, the spool drainer included: it drains a
spool directory it finds (left by a gateway that is gone) unless a running gateway holds that
directory's lock (``gateway/ingest/spool_lock.py``); a gateway drains its own spool whether or
not it runs the outbox workers itself."""

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


async def wait_stored(url: str, keys: set[str]) -> set[str]:
    deadline = time.monotonic() + 30
    while (stored := await stored_keys(url)) != keys and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    return stored


async def test_the_worker_drains_a_spool_no_gateway_holds(
    fresh_db_url: str, tmp_path: Path
) -> None:
    """``hookline worker`` started on a data directory holding a spool segment left by a
    gateway that is gone runs the spool drainer: the events reach PostgreSQL and the
    segment is deleted."""
    keys = spooled_segment(tmp_path / "data", seed=77)
    segment = tmp_path / "data" / "spool" / "seg-000000000001.log"
    settings: Any = build_settings(fresh_db_url, tmp_path, sources=SOURCES)
    async with serve(settings, role="worker") as worker:
        assert "spool-drainer" in {name for name, _ in worker.runtime.background}
        assert await wait_stored(fresh_db_url, keys) == keys
        deadline = time.monotonic() + 30
        while segment.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not segment.exists()
        assert worker.metric("hookline_spool_events") == 0


async def test_the_worker_leaves_a_running_gateways_spool_to_that_gateway(
    fresh_db_url: str, tmp_path: Path
) -> None:
    """A worker started on the data directory of a running gateway (which holds the spool
    lock) runs no spool drainer and reports its spool disabled; the gateway, with
    ``[server] workers = false``, drains the segment into PostgreSQL itself."""
    keys = spooled_segment(tmp_path / "data", seed=78)
    segment = tmp_path / "data" / "spool" / "seg-000000000001.log"
    settings: Any = build_settings(
        fresh_db_url, tmp_path, sources=SOURCES, server={"workers": False}
    )
    async with serve(settings) as gateway:
        async with serve(settings, role="worker") as worker:
            ready = await worker.client.get("/readyz")
            assert ready.json()["spool"] == "disabled"
            assert worker.runtime.ingestor.spool is None
            assert "spool-drainer" not in {name for name, _ in worker.runtime.background}
        assert await wait_stored(fresh_db_url, keys) == keys
        assert gateway.metric("hookline_spool_events") == 0
    assert not segment.exists()
