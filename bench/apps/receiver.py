"""The baselines Hookline is measured against, one app for every signing scheme:

* ``BENCH_STORE=none``, the **floor**: Litestar reads the raw body and runs the provider's own
  verification (the same adapter ``verify`` Hookline runs), then answers 200 without parsing
  or storing anything. No gateway on this stack that checks signatures can be faster;
* ``BENCH_STORE=insert``, **naive with signature**: the same, then one INSERT of the body
  per request through an asyncpg pool, acknowledged after the commit: what a first
  durable implementation usually looks like (no idempotency, no metrics, no logs).

``BENCH_SOURCE`` holds the source (bench/traffic.py ``spec_to_json``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
from litestar import Litestar, Request, Response, post

from bench.traffic import spec_from_json
from handlers.base import AuthError, VerifyContext, WebhookRequest
from handlers.registry import get_adapter

SOURCE = spec_from_json(os.environ["BENCH_SOURCE"])
ADAPTER = get_adapter(SOURCE.provider)
STORE = os.environ.get("BENCH_STORE", "none")
PATH = f"/webhooks/{SOURCE.provider}/{SOURCE.name}"
OK = b'{"accepted":1}'


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    if STORE == "insert":
        app.state.pool = await asyncpg.create_pool(
            os.environ["BENCH_DATABASE_URL"], min_size=10, max_size=10
        )
        await app.state.pool.execute(
            "CREATE TABLE IF NOT EXISTS naive_events "
            "(id bigserial PRIMARY KEY, provider text, received_at timestamptz, body jsonb)"
        )
    yield
    if STORE == "insert":
        await app.state.pool.close()


async def _verified(request: Request[Any, Any, Any]) -> tuple[bytes, datetime] | None:
    body = await request.body()
    now = datetime.now(UTC)
    webhook = WebhookRequest("POST", "", dict(request.headers.items()), body)
    try:
        await ADAPTER.verify(webhook, SOURCE, VerifyContext(now=now))
    except AuthError:
        return None
    return body, now


@post(PATH)
async def floor(request: Request[Any, Any, Any]) -> Response[bytes]:
    if await _verified(request) is None:
        return Response(content=b"", status_code=401)
    return Response(content=OK, media_type="application/json")


@post(PATH)
async def naive(request: Request[Any, Any, Any]) -> Response[bytes]:
    verified = await _verified(request)
    if verified is None:
        return Response(content=b"", status_code=401)
    body, now = verified
    await request.app.state.pool.execute(
        "INSERT INTO naive_events (provider, received_at, body) VALUES ($1, $2, $3::jsonb)",
        SOURCE.provider,
        now,
        body.decode(),
    )
    return Response(content=OK, media_type="application/json")


app = Litestar([naive if STORE == "insert" else floor], lifespan=[lifespan])
