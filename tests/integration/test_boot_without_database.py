"""The gateway starts, and stops, whatever PostgreSQL is doing.

Each test runs a real gateway process and its own PostgreSQL on a port chosen in advance, so
the gateway can be given the URL of a server that is not running yet.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from gateway.storage.embedded import EmbeddedPostgres
from hookline_testing import samples_for
from tests.integration._gateway_process import (
    GatewayProcess,
    clean_environment,
    free_port,
    run_gateway,
)

SPEC, KEY = samples_for("sendgrid").make_source("main")
ADMIN_TOKEN = "boot-test-admin-token"


@pytest.fixture
async def later_pg() -> AsyncIterator[EmbeddedPostgres]:
    """A PostgreSQL whose port and password are fixed now and which is NOT started: the test
    starts it (``asyncio.to_thread(server.start)``) when it wants the database to appear."""
    base = Path(tempfile.mkdtemp(prefix="hookline-boot-pg-"))
    os.chmod(base, 0o755)
    (base / "pg").mkdir()
    server = EmbeddedPostgres(base / "pg", durable=False, port=free_port())
    server.url()  # writes the password the cluster will be initialised with
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop, "immediate")
        shutil.rmtree(base, ignore_errors=True)


def config(url: str, workdir: Path, **storage: Any) -> dict[str, Any]:
    return {
        "database": {
            "url": url,
            "pool_min_size": 1,
            "pool_max_size": 4,
            "connect_timeout_seconds": 2.0,
            "connect_retry_max_seconds": 1.0,
        },
        "storage": {"data_dir": str(workdir / "data"), **storage},
        "admin": {"token": ADMIN_TOKEN},
        "logging": {"format": "json", "level": "info"},
        "sources": [{"provider": "sendgrid", "name": "main", "signing_key": SPEC.signing_key}],
    }


async def send_events(client: httpx.AsyncClient, first_seed: int, requests: int) -> list[str]:
    """POST ``requests`` signed SendGrid webhooks (3 events each); every one must be acked."""
    acked: list[str] = []
    for seed in range(first_seed, first_seed + requests):
        body = samples_for("sendgrid").example_body(3, seed=seed)
        request = samples_for("sendgrid").signed_request(SPEC, KEY, body, now=datetime.now(UTC))
        response = await client.post(
            "/webhooks/sendgrid/main", content=request.body, headers=dict(request.headers)
        )
        assert response.status_code == 200, response.text
        acked += [f"sendgrid:{item['sg_event_id']}" for item in msgspec.json.decode(body)]
    return acked


async def stored_keys(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return [row["dedup_key"] for row in await conn.fetch("SELECT dedup_key FROM events")]
    except asyncpg.UndefinedTableError:  # the gateway has not migrated it yet
        return []
    finally:
        await conn.close()


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


async def wait_until(condition: Callable[[], Any], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.2)
    raise AssertionError("condition not reached in time")


def events_named(gateway: GatewayProcess, name: str) -> list[dict[str, Any]]:
    return [line for line in gateway.json_lines() if line.get("event") == name]


async def test_starts_with_the_database_down_spools_then_migrates_and_drains(
    later_pg: EmbeddedPostgres, tmp_path: Path
) -> None:
    """Started against a PostgreSQL that is not running: /livez and /healthz are healthy,
    /readyz is ready with storage degraded, the admin API answers 503 problem+json, the
    metrics say storage is not connected, signed webhooks are acknowledged into the spool,
    and one clear log line (no traceback) says why. Once PostgreSQL starts, migrations run
    and every acknowledged event is stored exactly once; storage reads as connected."""
    url = later_pg.url()
    async with (
        run_gateway(config(url, tmp_path), tmp_path, clean_environment()) as gateway,
        httpx.AsyncClient(base_url=gateway.url, timeout=10.0) as client,
    ):
        for path in ("/livez", "/healthz"):
            assert (await client.get(path)).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["storage"] == "degraded"
        assert ready.json()["database"] == "unavailable"
        assert ready.json()["spool"] == "ok"
        admin = await client.get("/v1/dlq", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert admin.status_code == 503
        assert admin.headers["content-type"].startswith("application/problem+json")
        assert int(admin.headers["retry-after"]) >= 1
        scrape = (await client.get("/metrics")).text
        assert metric(scrape, "hookline_storage_connected") == 0
        assert metric(scrape, "hookline_storage_unreachable_seconds") > 0

        acked = await send_events(client, 100, 10)
        scrape = (await client.get("/metrics")).text
        assert metric(scrape, "hookline_spool_events") == len(acked)
        [line] = events_named(gateway, "storage.unavailable_at_start")
        assert line["level"] == "error" and line["error"]

        await asyncio.to_thread(later_pg.start)

        async def all_stored() -> bool:
            return sorted(await stored_keys(url)) == sorted(acked)

        await wait_until(all_stored)
        acked += await send_events(client, 200, 5)  # and now straight into PostgreSQL
        await wait_until(all_stored)
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["storage"] == "ok"
        admin = await client.get("/v1/dlq", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert admin.status_code == 200
        scrape = (await client.get("/metrics")).text
        assert metric(scrape, "hookline_storage_connected") == 1
        assert metric(scrape, "hookline_storage_unreachable_seconds") == 0
        assert metric(scrape, "hookline_spool_events") == 0
        assert events_named(gateway, "storage.connected")
    keys = await stored_keys(url)
    assert len(keys) == len(set(keys)) == len(acked) == 45
    assert "Traceback" not in gateway.stderr()


async def test_sigterm_drains_the_spool_into_a_database_that_came_back(
    later_pg: EmbeddedPostgres, tmp_path: Path
) -> None:
    """Events spooled while PostgreSQL was unreachable, PostgreSQL back, SIGTERM before the
    gateway's own retry reached it: the shutdown connects, migrates, drains the spool into
    PostgreSQL and only then exits, with status 0 and an empty spool directory."""
    url = later_pg.url()
    await asyncio.to_thread(later_pg.start)  # initialise the cluster now, so that it can
    await asyncio.to_thread(later_pg.stop)  # start again in about a second later on
    settings = config(url, tmp_path, shutdown_drain_seconds=30.0)
    settings["database"]["connect_retry_max_seconds"] = 600.0
    async with (
        run_gateway(settings, tmp_path, clean_environment()) as gateway,
        httpx.AsyncClient(base_url=gateway.url, timeout=10.0) as client,
    ):
        acked = await send_events(client, 300, 8)

        async def retries_are_far_apart() -> bool:
            # retries come 0.5, 1, 2, 4, 8 s apart: after the 4th the next is 8 s away
            return len(events_named(gateway, "storage.still_unavailable")) >= 4

        await wait_until(retries_are_far_apart)
        await asyncio.to_thread(later_pg.start)
        gateway.process.send_signal(signal.SIGTERM)
        returncode = await asyncio.wait_for(gateway.process.wait(), timeout=60)
    assert returncode == 0
    assert not events_named(gateway, "storage.connected")  # the retry loop did not do it
    [draining] = events_named(gateway, "spool.draining_at_exit")
    assert draining["events"] == len(acked)
    assert events_named(gateway, "spool.drained_at_exit")
    assert sorted(await stored_keys(url)) == sorted(acked)
    assert not list((tmp_path / "data" / "spool").glob("seg-*.log"))
    assert "Traceback" not in gateway.stderr()


async def test_sigterm_with_the_database_down_says_what_is_left_and_where(
    later_pg: EmbeddedPostgres, tmp_path: Path
) -> None:
    """SIGTERM while PostgreSQL is still unreachable: the process exits 0 after its drain
    budget, leaves the spooled events on disk and logs, as an error, how many and where."""
    url = later_pg.url()
    settings = config(url, tmp_path, shutdown_drain_seconds=1.0)
    async with (
        run_gateway(settings, tmp_path, clean_environment()) as gateway,
        httpx.AsyncClient(base_url=gateway.url, timeout=10.0) as client,
    ):
        acked = await send_events(client, 400, 4)
        gateway.process.send_signal(signal.SIGTERM)
        returncode = await asyncio.wait_for(gateway.process.wait(), timeout=60)
    assert returncode == 0
    [left] = events_named(gateway, "spool.left_at_exit")
    assert left["level"] == "error"
    assert left["events"] == len(acked)
    assert left["directory"] == str((tmp_path / "data" / "spool").resolve())
    assert list((tmp_path / "data" / "spool").glob("seg-*.log"))
