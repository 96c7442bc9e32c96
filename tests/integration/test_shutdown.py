"""SIGTERM: stop taking webhooks and say so, then finish, drain and exit 0."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from pathlib import Path

import httpx

from hookline_testing import samples_for
from tests.integration._gateway_process import clean_environment, run_gateway

SPEC, KEY = samples_for("sendgrid").make_source("main")


async def test_sigterm_refuses_new_webhooks_and_turns_unready_during_the_shutdown_delay(
    fresh_db_url: str, tmp_path: Path
) -> None:
    """After SIGTERM, for ``[server] shutdown_delay_seconds``, the gateway still answers:
    /readyz is 503 ("stopping"), /livez is 200, and a signed webhook gets 503 problem+json
    with Retry-After (so the ESP retries elsewhere rather than into this pod's spool); then
    the process exits 0."""
    config = {
        "server": {"shutdown_delay_seconds": 4.0},
        "database": {"url": fresh_db_url, "pool_min_size": 1, "pool_max_size": 2},
        "storage": {"data_dir": str(tmp_path / "data")},
        "ingest": {"retry_after_seconds": 7},
        "logging": {"format": "json"},
        "sources": [{"provider": "sendgrid", "name": "main", "signing_key": SPEC.signing_key}],
    }
    async with run_gateway(config, tmp_path, clean_environment()) as gateway:

        async def post() -> httpx.Response:
            body = samples_for("sendgrid").example_body(2, seed=7)
            request = samples_for("sendgrid").signed_request(SPEC, KEY, body, now=datetime.now(UTC))
            async with httpx.AsyncClient(base_url=gateway.url, timeout=5.0) as client:
                return await client.post(
                    "/webhooks/sendgrid/main",
                    content=request.body,
                    headers=dict(request.headers),
                )

        assert (await post()).status_code == 200
        gateway.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        async with httpx.AsyncClient(base_url=gateway.url, timeout=5.0) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["status"] == "stopping"
            assert (await client.get("/livez")).status_code == 200
        refused = await post()
        assert refused.status_code == 503
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.headers["retry-after"] == "7"
        returncode = await asyncio.wait_for(gateway.process.wait(), timeout=60)
    assert returncode == 0
