"""Integration fixtures: a real gateway (uvicorn on a free loopback port, real PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import uvicorn
from litestar import Litestar

from gateway.app import Role, create_app
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.storage.embedded import EmbeddedPostgres
from gateway.storage.pool import create_pool
from gateway.storage.store import EventStore
from observability.metrics import Metrics
from tests.integration._metric_sum import metric_sum


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningGateway:
    """A gateway served over real HTTP; ``client`` talks to it, ``runtime`` is its inside."""

    url: str
    app: Litestar
    settings: Settings
    metrics: Metrics
    client: httpx.AsyncClient

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples whose labels include ``labels`` (0.0 when none)."""
        return metric_sum(self.metrics.registry, name, **labels)


def build_settings(db_url: str, tmp_path: Any, **sections: Any) -> Settings:
    """Settings for a test gateway: the given database, a temp data dir, overrides by section."""
    raw: dict[str, Any] = {
        "database": {"url": db_url, "pool_min_size": 1, "pool_max_size": 5},
        "storage": {"data_dir": str(tmp_path / "data")},
        "logging": {"format": "json", "level": "warning"},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return msgspec.convert(raw, Settings)


@contextlib.asynccontextmanager
async def serve(settings: Settings, role: Role = "gateway") -> AsyncIterator[RunningGateway]:
    """Run the app on a free port until the block exits (graceful shutdown)."""
    metrics = Metrics()
    app = create_app(settings, metrics_=metrics, role=role)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(400):
        if server.started or task.done():
            break
        await asyncio.sleep(0.025)
    if task.done():
        task.result()
        raise RuntimeError("gateway did not start")
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        try:
            yield RunningGateway(url, app, settings, metrics, client)
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, timeout=30)


@pytest.fixture
async def store(fresh_db_url: str) -> AsyncIterator[EventStore]:
    """An ``EventStore`` on this test's fresh database (no gateway around it)."""
    pool = await create_pool(fresh_db_url, min_size=1, max_size=4)
    try:
        yield EventStore(pool)
    finally:
        await pool.close()


@pytest.fixture
def gateway_factory(
    fresh_db_url: str, tmp_path: Any
) -> Callable[..., contextlib.AbstractAsyncContextManager[RunningGateway]]:
    """``async with gateway_factory(sources=[...], sinks=[...]) as gw:`` — a running gateway
    on this test's fresh database."""

    def factory(role: Role = "gateway", **sections: Any) -> Any:
        return serve(build_settings(fresh_db_url, tmp_path, **sections), role=role)

    return factory


@pytest.fixture
def own_pg() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL only this test uses, so it can be stopped and started
    (``tests.integration._outage.restart``)."""
    base = Path(tempfile.mkdtemp(prefix="hookline-own-pg-"))
    os.chmod(base, 0o755)
    server = EmbeddedPostgres(base / "pg", durable=False)
    server.start()
    yield server
    server.stop("immediate")
