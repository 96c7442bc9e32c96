"""Durability when PostgreSQL is down: spool, drain, breaker, spool full, corruption, SIGKILL.

These tests run their own PostgreSQL (so they can stop it) and check the one promise that
matters: every request answered 200 ends up in PostgreSQL exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import msgspec

from gateway.ingest.drainer import SpoolDrainer
from gateway.ingest.isolation import IsolatingWriter
from gateway.ingest.spool import Spool, encode_record
from gateway.resilience import AsyncCircuitBreaker
from gateway.storage.embedded import EmbeddedPostgres
from gateway.storage.pool import create_pool
from gateway.storage.quarantine import QuarantineStore
from gateway.storage.store import EventStore
from handlers import sendgrid
from hookline_testing import samples_for
from observability.metrics import Metrics
from tests.integration._outage import restart, wait_for
from tests.integration.conftest import build_settings, free_port, serve

SPEC, KEY = samples_for("sendgrid").make_source("main")
SOURCES = [{"provider": "sendgrid", "name": "main", "signing_key": SPEC.signing_key}]


def signed(seed: int, count: int = 1) -> tuple[bytes, dict[str, str]]:
    body = samples_for("sendgrid").example_body(count, seed=seed)
    request = samples_for("sendgrid").signed_request(SPEC, KEY, body, now=datetime.now(UTC))
    return request.body, dict(request.headers)


def event_ids(body: bytes) -> list[str]:
    return [f"sendgrid:{item['sg_event_id']}" for item in msgspec.json.decode(body)]


async def stored_keys(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT dedup_key FROM events")
        return [row["dedup_key"] for row in rows]
    finally:
        await conn.close()


async def test_database_outage_spools_then_drains_everything_acknowledged(
    own_pg: EmbeddedPostgres, tmp_path: Path
) -> None:
    """PostgreSQL stops while a client sends: every 200 is in PostgreSQL after it returns,
    once; the storage breaker opens and closes again, and the metrics show it."""
    settings = build_settings(
        own_pg.url(),
        tmp_path,
        sources=SOURCES,
        storage={"breaker_fail_max": 2, "breaker_reset_seconds": 0.5},
    )
    acked: list[str] = []
    async with serve(settings) as gw:

        async def send(seed: int) -> None:
            body, headers = signed(seed, count=2)
            response = await gw.client.post(
                "/webhooks/sendgrid/main", content=body, headers=headers
            )
            if response.status_code == 200:
                acked.extend(event_ids(body))
            else:
                assert response.status_code == 503, response.text

        for seed in range(20):
            await send(seed)
        own_pg.stop("immediate")
        for seed in range(20, 60):
            await send(seed)
        assert gw.runtime.storage_breaker.state == "open"
        assert gw.metric("hookline_spool_events") > 0
        ready = await gw.client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["database"] == "unavailable"
        restart(own_pg)
        for seed in range(60, 80):
            await send(seed)

        async def drained() -> bool:
            return gw.metric("hookline_spool_events") == 0

        await wait_for(drained)
        keys = await stored_keys(own_pg.url())
        assert len(keys) == len(set(keys)), "an event was stored twice"
        assert set(acked) <= set(keys), "an acknowledged event was lost"
        assert len(acked) == 160
        assert (
            gw.metric(
                "hookline_circuit_breaker_transitions_total", breaker="storage", to_state="open"
            )
            >= 1
        )
        assert (
            gw.metric(
                "hookline_circuit_breaker_transitions_total", breaker="storage", to_state="closed"
            )
            >= 1
        )
        assert gw.metric("hookline_circuit_breaker_state", breaker="storage") == 0
        assert gw.metric("hookline_spool_drained_events_total") > 0
        # receipt -> stored for each drained event, for the storage freshness SLO
        assert gw.metric("hookline_spool_residence_seconds_count") == gw.metric(
            "hookline_spool_drained_events_total"
        )
        assert (
            gw.metric("hookline_webhook_requests_total", provider="sendgrid", outcome="spooled") > 0
        )


async def test_spool_full_answers_503_and_loses_nothing_acknowledged(
    own_pg: EmbeddedPostgres, tmp_path: Path
) -> None:
    """With the database down and a tiny spool: 200 while the spool has room, then 503 with
    Retry-After; after recovery every acknowledged event is stored."""
    settings = build_settings(
        own_pg.url(),
        tmp_path,
        sources=SOURCES,
        storage={"breaker_fail_max": 1, "breaker_reset_seconds": 0.3, "spool_max_bytes": 3000},
    )
    acked: list[str] = []
    statuses: list[int] = []
    async with serve(settings) as gw:
        own_pg.stop("immediate")
        for seed in range(30):
            body, headers = signed(1000 + seed)
            response = await gw.client.post(
                "/webhooks/sendgrid/main", content=body, headers=headers
            )
            statuses.append(response.status_code)
            if response.status_code == 200:
                acked.extend(event_ids(body))
            else:
                assert response.status_code == 503
                assert int(response.headers["retry-after"]) > 0
        assert 200 in statuses and 503 in statuses
        assert gw.metric(
            "hookline_webhook_requests_total", provider="sendgrid", outcome="unavailable"
        ) == statuses.count(503)
        restart(own_pg)

        async def drained() -> bool:
            return gw.metric("hookline_spool_events") == 0

        await wait_for(drained)
        assert set(acked) <= set(await stored_keys(own_pg.url()))


async def test_corrupted_segment_drains_intact_records_and_keeps_the_bad_one(
    fresh_db_url: str, tmp_path: Path
) -> None:
    """A segment with a damaged record in the middle and a torn record at the end: the intact
    records are stored, the damaged bytes are kept aside and counted."""
    metrics = Metrics()
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    records = []
    for seed in range(3):
        body = samples_for("sendgrid").example_body(2, seed=2000 + seed)
        request = samples_for("sendgrid").signed_request(SPEC, KEY, body, now=datetime.now(UTC))
        events = sendgrid.ADAPTER.parse(request, SPEC, datetime.now(UTC)).events
        records.append((events, encode_record(events)))
    middle = bytearray(records[1][1])
    middle[20] ^= 0xFF  # flip a payload byte: the checksum fails
    torn = records[2][1][: len(records[2][1]) // 2]  # a crash mid-append
    (spool_dir / "seg-000000000001.log").write_bytes(records[0][1] + bytes(middle) + torn)

    spool = Spool(spool_dir, metrics, max_bytes=10**6, segment_bytes=10**6)
    pool = await create_pool(fresh_db_url)
    try:
        store = EventStore(pool)
        breaker = AsyncCircuitBreaker("storage", metrics, fail_max=3, reset_timeout=1)
        writer = IsolatingWriter(store, QuarantineStore(pool), breaker, metrics)
        moved = await SpoolDrainer(spool, writer, breaker, metrics).drain_once()
        assert moved == 2
        keys = set(await stored_keys(fresh_db_url))
        assert keys == {event.dedup_key for event in records[0][0]}
        kept = sorted((spool_dir / "corrupt").iterdir(), key=lambda p: int(p.stem.split("-")[-1]))
        assert [path.read_bytes() for path in kept] == [bytes(middle), torn]
        assert metrics.registry.get_sample_value("hookline_spool_corrupt_records_total") == 2
        assert not (spool_dir / "seg-000000000001.log").exists()
    finally:
        await pool.close()


def test_sigkill_with_a_full_spool_then_restart_drains_without_duplicates(
    own_pg: EmbeddedPostgres, tmp_path: Path
) -> None:
    """The gateway is SIGKILLed while events sit in its spool; a new process on the same data
    directory drains them once PostgreSQL is back, and nothing is stored twice."""
    port = free_port()
    config = tmp_path / "hookline.toml"
    config.write_text(
        f"""
[database]
url = "{own_pg.url()}"
[storage]
data_dir = "{tmp_path / "data"}"
breaker_fail_max = 1
breaker_reset_seconds = 0.5
[logging]
format = "json"
[[sources]]
provider = "sendgrid"
name = "main"
signing_key = "{SPEC.signing_key}"
"""
    )
    env = {**os.environ, "HOOKLINE_CONFIG": str(config), "HOOKLINE_PORT": str(port)}

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return process
            except httpx.HTTPError:
                time.sleep(0.2)
        process.kill()
        raise AssertionError("gateway did not start")

    gateway = start()
    acked: list[str] = []
    try:
        own_pg.stop("immediate")
        for seed in range(25):
            body, headers = signed(3000 + seed, count=4)
            response = httpx.post(
                f"http://127.0.0.1:{port}/webhooks/sendgrid/main", content=body, headers=headers
            )
            assert response.status_code == 200, response.text
            acked.extend(event_ids(body))
    finally:
        gateway.send_signal(signal.SIGKILL)
        gateway.wait(timeout=10)
    assert list((tmp_path / "data" / "spool").glob("seg-*.log"))
    restart(own_pg)
    gateway = start()
    try:
        deadline = time.monotonic() + 60
        keys: list[str] = []
        while time.monotonic() < deadline:
            keys = asyncio.run(stored_keys(own_pg.url()))
            if len(keys) >= len(acked):
                break
            time.sleep(0.3)
        assert len(keys) == len(set(keys))
        assert sorted(keys) == sorted(acked)
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=30)
    assert not list((tmp_path / "data" / "spool").glob("seg-*.log"))
