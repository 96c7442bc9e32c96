"""A short, real load test: ``write-config``, a gateway serving that config, Locust headless.

Locust (gevent) always runs as a subprocess, never inside the pytest process; the load is
bounded (5 users, 5 seconds) and only ever aimed at the test's own gateway on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

import asyncpg

from gateway.settings import load_settings
from handlers.events import EventType
from handlers.registry import available_providers
from loadtests.stats import AGGREGATED, read_stats_csv

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"


async def run(*command: str, env: dict[str, str] | None = None, timeout: float) -> tuple[int, str]:
    """Run a subprocess without blocking the event loop the gateway is served from."""
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return await process.wait(), output.decode(errors="replace")


async def count_events(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM events"))
    finally:
        await conn.close()


def total(gw: Any, name: str, providers: tuple[str, ...], **labels: str) -> float:
    """One counter summed over providers."""
    return float(sum(gw.metric(name, provider=provider, **labels) for provider in providers))


async def test_write_config_then_a_short_locust_run_stores_events(
    gateway_factory: Any, tmp_path: Path
) -> None:
    """The generated config is accepted by the gateway; 5 Locust users for 5 s across every
    provider finish with exit code 0 and no failures; every deliberately forged request got
    a 401 and was counted in hookline_signature_failures_total; events were stored, and
    redeliveries were recognised as duplicates."""
    providers = available_providers()
    out = tmp_path / "lt"
    code, output = await run(
        sys.executable, "-m", "loadtests.traffic", "write-config", "--out", str(out), timeout=120
    )
    assert code == 0, output
    config_path, credentials_path = out / "hookline.toml", out / "credentials.json"
    assert config_path.stat().st_mode & 0o077 == 0, "the config holds secrets: owner-only"
    assert credentials_path.stat().st_mode & 0o077 == 0
    settings = load_settings(config_path, environ={})
    assert sorted(source.provider for source in settings.sources) == sorted(providers)

    sources = tomllib.loads(config_path.read_text())["sources"]
    async with gateway_factory(sources=sources) as gw:
        prefix = tmp_path / "locust"
        summary = tmp_path / "locust"  # Locust appends ".json"
        env = {
            **os.environ,
            "LOADTEST_CREDENTIALS": str(credentials_path),
            "LOADTEST_BATCH_SIZE": "3",
            "LOADTEST_DUPLICATE_RATIO": "0.2",
            "LOADTEST_BAD_SIGNATURE_RATIO": "0.1",
        }
        env.pop("LOADTEST_PROVIDERS", None)
        code, output = await run(
            sys.executable, "-m", "locust",
            "-f", str(LOCUSTFILE),
            "--headless", "-u", "5", "-r", "5", "-t", "5s",
            "--stop-timeout", "10",
            "--host", gw.url,
            "--csv", str(prefix),
            "--json-file", str(summary),
            env=env,
            timeout=180,
        )  # fmt: skip
        assert code == 0, output[-4000:]

        # Locust's final (exact) statistics
        entries = json.loads(summary.with_suffix(".json").read_text())
        requests = sum(entry["num_requests"] for entry in entries)
        assert sum(entry["num_failures"] for entry in entries) == 0, output[-4000:]
        forged = sum(e["num_requests"] for e in entries if e["name"].endswith(" bad_signature"))
        redelivered = sum(e["num_requests"] for e in entries if e["name"].endswith(" duplicate"))
        assert requests > forged > 0
        assert redelivered > 0
        # the CSV the capacity script reads agrees: no failures
        assert read_stats_csv(f"{prefix}_stats.csv")[AGGREGATED].failures == 0

        # the gateway saw the same traffic
        assert total(gw, "hookline_signature_failures_total", providers, reason="invalid") == forged
        assert total(gw, "hookline_signature_failures_total", providers, reason="missing") == 0
        assert (
            total(gw, "hookline_webhook_requests_total", providers, outcome="unauthorized")
            == forged
        )
        assert (
            total(gw, "hookline_webhook_requests_total", providers, outcome="accepted")
            == requests - forged
        )
        stored = await count_events(gw.settings.database.url)
        assert stored > 0
        counted = sum(
            total(gw, "hookline_events_received_total", providers, event_type=t.value)
            for t in EventType
        )
        assert counted == stored
        assert total(gw, "hookline_events_duplicate_total", providers) > 0
