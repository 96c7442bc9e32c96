"""The naive baseline: Litestar, decode the JSON, one INSERT per event per request, default
asyncpg pool (with its reset query). What a first implementation usually looks like."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec
from litestar import Litestar, Request, Response, post

DSN = os.environ["BENCH_DATABASE_URL"]


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(DSN, min_size=10, max_size=10)
    async with app.state.pool.acquire() as conn:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS naive_events (
                   dedup_key text PRIMARY KEY, event text, email text, raw jsonb)"""
        )
    yield
    await app.state.pool.close()


@post("/webhooks/sendgrid/main")
async def receive(request: Request[Any, Any, Any]) -> Response[bytes]:
    events = msgspec.json.decode(await request.body())
    async with request.app.state.pool.acquire() as conn:
        for event in events:
            await conn.execute(
                "INSERT INTO naive_events VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                event["sg_event_id"],
                event["event"],
                event["email"],
                msgspec.json.encode(event).decode(),
            )
    return Response(content=b'{"accepted":1}', media_type="application/json")


app = Litestar([receive], lifespan=[lifespan])
