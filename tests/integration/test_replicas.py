"""Several gateways on one PostgreSQL, as a Deployment with replicas (or an HPA) runs them.

Two real ``hookline serve`` processes start at the same moment against a fresh, empty
database, then take mixed signed load (SendGrid batches, Mailgun single events) on both.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from gateway.delivery.signing import webhook_id
from gateway.storage.embedded import EmbeddedPostgres
from hookline_testing import samples_for
from tests.integration._gateway_process import GatewayProcess, clean_environment, run_gateway
from tests.integration.delivery_support import SinkServer, healthy, sink, sink_servers

SENDGRID, SENDGRID_KEY = samples_for("sendgrid").make_source("main")
MAILGUN, MAILGUN_KEY = samples_for("mailgun").make_source("main")
TOKEN = "replicas-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def empty_db_url(pg_server: EmbeddedPostgres) -> AsyncIterator[str]:
    """A new database with nothing in it (no migrations), as a fresh install has."""
    name = "rep_" + uuid.uuid4().hex[:16]
    admin = await asyncpg.connect(pg_server.url())
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_server.url().rsplit("/", 1)[0] + "/" + name
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


def gateway_config(url: str, workdir: Path, crm: SinkServer) -> dict[str, Any]:
    return {
        "database": {"url": url, "pool_min_size": 1, "pool_max_size": 6},
        "storage": {"data_dir": str(workdir / "data")},
        "admin": {"token": TOKEN},
        "logging": {"format": "json", "level": "warning"},
        "sources": [
            {"provider": "sendgrid", "name": "main", "signing_key": SENDGRID.signing_key},
            {"provider": "mailgun", "name": "main", "signing_key": MAILGUN.signing_key},
        ],
        "sinks": [sink("crm", crm)],
    }


class Load:
    """Signed requests to the replicas; what each one acknowledged (200)."""

    def __init__(self) -> None:
        self.acked: dict[str, list[str]] = {}
        self.refused = 0
        self._seed = 0

    def next_request(self) -> tuple[str, bytes, dict[str, str], list[str]]:
        self._seed += 1
        seed = self._seed
        now = datetime.now(UTC)
        if seed % 3:
            body = samples_for("sendgrid").example_body(5, seed=seed * 10)
            request = samples_for("sendgrid").signed_request(SENDGRID, SENDGRID_KEY, body, now=now)
            ids = [f"sendgrid:{item['sg_event_id']}" for item in msgspec.json.decode(body)]
            return "/webhooks/sendgrid/main", request.body, dict(request.headers), ids
        body = samples_for("mailgun").example_body(seed=seed)
        request = samples_for("mailgun").signed_request(MAILGUN, MAILGUN_KEY, body, now=now)
        return (
            "/webhooks/mailgun/main",
            request.body,
            dict(request.headers),
            [f"mailgun:evt-{seed:016x}"],
        )

    async def send(self, client: httpx.AsyncClient, name: str) -> bool:
        path, body, headers, ids = self.next_request()
        try:
            response = await client.post(path, content=body, headers=headers)
        except httpx.HTTPError:
            self.refused += 1
            return False
        if response.status_code != 200:
            self.refused += 1
            return False
        self.acked.setdefault(name, []).extend(ids)
        return True

    def all_acked(self) -> list[str]:
        return [key for keys in self.acked.values() for key in keys]


async def stored(url: str) -> tuple[int, set[str]]:
    """Rows in ``events`` and their distinct dedup keys."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT dedup_key FROM events")
    finally:
        await conn.close()
    return len(rows), {row["dedup_key"] for row in rows}


async def eventually(check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError("condition not reached in time")


@contextlib.asynccontextmanager
async def two_replicas(
    url: str, workdir: Path, crm: SinkServer
) -> AsyncIterator[tuple[GatewayProcess, GatewayProcess]]:
    """Two gateway processes started at the same moment, each with its own data directory."""
    async with contextlib.AsyncExitStack() as stack:
        first, second = await asyncio.gather(
            *(
                stack.enter_async_context(
                    run_gateway(
                        gateway_config(url, workdir / name, crm),
                        workdir / name,
                        clean_environment(),
                    )
                )
                for name in ("a", "b")
            )
        )
        yield first, second


async def test_two_replicas_on_one_database_share_state_and_lose_nothing(
    empty_db_url: str, tmp_path: Path
) -> None:
    """Both replicas start together on a fresh database. Under mixed load on both: every
    acknowledged event is stored exactly once and delivered to the sink exactly once; a
    Mailgun token used on one replica is refused (replayed) on the other; a DLQ bulk-replay
    job and a suppression made on one are visible on the other. Then one replica is
    SIGKILLed mid-load: nothing it (or the other) acknowledged is missing."""
    crm = SinkServer(healthy)
    load = Load()
    async with (
        sink_servers(crm),
        two_replicas(empty_db_url, tmp_path, crm) as (a, b),
        httpx.AsyncClient(base_url=a.url, timeout=30.0) as to_a,
        httpx.AsyncClient(base_url=b.url, timeout=30.0) as to_b,
    ):
        # -- mixed load on both ------------------------------------------------------------
        started = time.monotonic()

        async def worker(client: httpx.AsyncClient, name: str, requests: int) -> None:
            for _ in range(requests):
                assert await load.send(client, name)

        await asyncio.gather(*(worker(c, n, 60) for c, n in ((to_a, "a"), (to_b, "b")) * 3))
        acked = load.all_acked()
        rows, keys = await stored(empty_db_url)
        elapsed = time.monotonic() - started
        assert rows == len(keys) == len(acked) == len(set(acked))
        assert keys == set(acked)
        print(f"\nphase 1: {len(acked)} events in 360 requests to 2 replicas, {elapsed:.1f}s")

        async def all_delivered() -> bool:
            return len(crm.received) >= len(acked)

        await eventually(all_delivered)
        await asyncio.sleep(1.0)  # a second delivery would arrive now
        delivered = crm.ids()
        assert len(delivered) == len(set(delivered)) == len(acked)
        delivery_ids = await expected_webhook_ids(empty_db_url)
        assert set(delivered) == delivery_ids
        print(
            f"phase 1: {len(delivered)} sink deliveries, each once, "
            f"{time.monotonic() - started:.1f}s after the first request"
        )

        # -- a Mailgun token is spent on every replica ---------------------------------------
        body = samples_for("mailgun").example_body(seed=900_001)
        request = samples_for("mailgun").signed_request(
            MAILGUN, MAILGUN_KEY, body, now=datetime.now(UTC)
        )
        first = await to_a.post(
            "/webhooks/mailgun/main", content=request.body, headers=dict(request.headers)
        )
        assert first.status_code == 200
        forged = msgspec.json.decode(request.body)
        forged["event-data"]["id"] = "evt-forged"
        forged["event-data"]["recipient"] = "victim@example.com"
        replay = await to_b.post(
            "/webhooks/mailgun/main",
            content=msgspec.json.encode(forged),
            headers=dict(request.headers),
        )
        assert replay.status_code == 401

        # -- admin state lives in PostgreSQL -----------------------------------------------
        job = await to_a.post("/v1/dlq/replay", json={"sink": "crm"}, headers=AUTH)
        assert job.status_code == 202, job.text
        job_id = job.json()["job_id"]

        async def job_seen_done_on_b() -> bool:
            seen = await to_b.get(f"/v1/dlq/replay/{job_id}", headers=AUTH)
            assert seen.status_code == 200, seen.text
            return bool(seen.json()["status"] == "done")

        await eventually(job_seen_done_on_b)
        added = await to_b.post(
            "/v1/suppressions", json={"address": "blocked@example.com"}, headers=AUTH
        )
        assert added.status_code == 201
        seen = await to_a.get("/v1/suppressions/blocked@example.com", headers=AUTH)
        assert seen.status_code == 200

        # -- SIGKILL one replica mid-load ----------------------------------------------------
        before = len(load.all_acked())
        started = time.monotonic()
        killed = asyncio.Event()

        target = len(load.acked["b"]) + 150

        async def kill_b_mid_load() -> None:
            while len(load.acked["b"]) < target:
                await asyncio.sleep(0.005)
            b.process.send_signal(signal.SIGKILL)
            killed.set()

        async def sender(client: httpx.AsyncClient, name: str) -> None:
            for _ in range(120):
                if name == "b" and killed.is_set():
                    await load.send(client, name)  # refused: the process is gone
                    return
                await load.send(client, name)

        await asyncio.gather(
            kill_b_mid_load(),
            *(sender(c, n) for c, n in ((to_a, "a"), (to_b, "b")) * 3),
        )
        await b.process.wait()
        acked = load.all_acked()
        rows, keys = await stored(empty_db_url)
        assert rows == len(keys), "an event was stored twice"
        assert set(acked) <= keys, "an acknowledged event was lost"
        print(
            f"phase 2: {len(acked) - before} events acknowledged, b SIGKILLed after "
            f"{len(load.acked['b'])} acked by b in all, {load.refused} requests refused, "
            f"{rows} rows, {time.monotonic() - started:.1f}s"
        )
        assert (await to_a.get("/readyz")).status_code == 200


async def expected_webhook_ids(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT dedup_key FROM events")
    finally:
        await conn.close()
    return {webhook_id("crm", row["dedup_key"]) for row in rows}
