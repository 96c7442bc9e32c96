"""Slow clients against a real gateway process (``hookline serve``, real PostgreSQL): a
connection that never finishes its request head is answered 408 and closed after
``[server] header_read_timeout_seconds``, while genuine signed webhooks keep being answered;
a webhook body that stalls mid-way gets 408 after ``body_read_timeout_seconds``, and is
counted (``outcome="timeout"``) and logged."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from hookline_testing import samples_for
from tests.integration._gateway_process import (
    ROOT,
    clean_environment,
    free_port,
    run_gateway,
    to_toml,
)

SPEC, KEY = samples_for("sendgrid").make_source("main")
SLOW_CONNECTIONS = 300
ADMIN_TOKEN = "slow-clients-admin-token"
#: generous bound for "closed": the deadline is 1 s, this is only a liveness limit
CLOSED_WITHIN_SECONDS = 30.0


def _config(db_url: str, workdir: Path) -> dict[str, Any]:
    return {
        "server": {
            "header_read_timeout_seconds": 1.0,
            "keep_alive_timeout_seconds": 1.0,
            "body_read_timeout_seconds": 1.0,
        },
        "database": {"url": db_url, "pool_min_size": 1, "pool_max_size": 4},
        "storage": {"data_dir": str(workdir / "data")},
        "logging": {"format": "json", "level": "info"},
        "sources": [{"provider": "sendgrid", "name": "main", "signing_key": SPEC.signing_key}],
        "admin": {"token": ADMIN_TOKEN},
    }


async def _stall_in_headers(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /webhooks/sendgrid/main HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    await writer.drain()
    return reader, writer


async def _read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), timeout=CLOSED_WITHIN_SECONDS)


async def _genuine_webhooks(client: httpx.AsyncClient, count: int) -> list[int]:
    statuses = []
    for seed in range(count):
        request = samples_for("sendgrid").signed_request(
            SPEC, KEY, samples_for("sendgrid").example_body(1, seed=seed), now=datetime.now(UTC)
        )
        response = await client.post(
            "/webhooks/sendgrid/main", content=request.body, headers=dict(request.headers)
        )
        statuses.append(response.status_code)
    return statuses


async def test_stalled_headers_are_closed_while_genuine_webhooks_flow(
    fresh_db_url: str, tmp_path: Path
) -> None:
    """Hundreds of connections that stop mid-header get a 408 and are closed by the server;
    while they are all open, signed webhooks are answered 200."""
    config = _config(fresh_db_url, tmp_path)
    async with (
        run_gateway(config, tmp_path, clean_environment()) as gateway,
        httpx.AsyncClient(base_url=gateway.url, timeout=10.0) as client,
    ):
        port = int(gateway.url.rsplit(":", 1)[1])
        slow = await asyncio.gather(*(_stall_in_headers(port) for _ in range(SLOW_CONNECTIONS)))
        try:
            assert await _genuine_webhooks(client, 5) == [200] * 5
            replies = await asyncio.gather(*(_read_until_closed(reader) for reader, _ in slow))
            assert await _genuine_webhooks(client, 1) == [200]
        finally:
            for _, writer in slow:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    assert len(replies) == SLOW_CONNECTIONS
    assert all(reply.startswith(b"HTTP/1.1 408 ") for reply in replies), replies[0]


async def test_connection_that_sends_nothing_is_closed(fresh_db_url: str, tmp_path: Path) -> None:
    """A client that connects and never sends a byte is closed after the header deadline."""
    async with run_gateway(_config(fresh_db_url, tmp_path), tmp_path, clean_environment()) as gw:
        port = int(gw.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            reply = await _read_until_closed(reader)
        finally:
            writer.close()
    assert reply.startswith(b"HTTP/1.1 408 ")


async def test_idle_keep_alive_connection_is_closed_after_its_response(
    fresh_db_url: str, tmp_path: Path
) -> None:
    """A keep-alive connection that got its answer and then says nothing more is closed by
    the server (``keep_alive_timeout_seconds``), without a second response."""
    async with run_gateway(_config(fresh_db_url, tmp_path), tmp_path, clean_environment()) as gw:
        port = int(gw.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        try:
            received = await _read_until_closed(reader)
        finally:
            writer.close()
    assert received.startswith(b"HTTP/1.1 200 ")
    assert received.count(b"HTTP/1.1 ") == 1


async def test_stalled_body_gets_408_and_is_counted_and_logged(
    fresh_db_url: str, tmp_path: Path
) -> None:
    """A webhook whose body stops half-way is answered 408 and the connection closed; the
    request is counted as ``outcome="timeout"`` and logged as such, nothing is stored."""
    async with (
        run_gateway(_config(fresh_db_url, tmp_path), tmp_path, clean_environment()) as gateway,
        httpx.AsyncClient(base_url=gateway.url, timeout=10.0) as client,
    ):
        port = int(gateway.url.rsplit(":", 1)[1])
        request = samples_for("sendgrid").signed_request(
            SPEC, KEY, samples_for("sendgrid").example_body(1, seed=7), now=datetime.now(UTC)
        )
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = [b"POST /webhooks/sendgrid/main HTTP/1.1", b"Host: 127.0.0.1"]
        head += [f"{k}: {v}".encode() for k, v in request.headers.items() if k != "content-length"]
        head.append(f"Content-Length: {len(request.body)}".encode())
        writer.write(b"\r\n".join(head) + b"\r\n\r\n" + request.body[: len(request.body) // 2])
        await writer.drain()
        try:
            reply = await _read_until_closed(reader)
        finally:
            writer.close()
        metrics = (await client.get("/metrics")).text
    assert reply.startswith(b"HTTP/1.1 408 "), reply
    assert b"application/problem+json" in reply
    assert (
        'hookline_webhook_requests_total{outcome="timeout",provider="sendgrid",source="main"} 1.0'
        in metrics
    )
    connection = await asyncpg.connect(fresh_db_url)
    try:
        assert await connection.fetchval("SELECT count(*) FROM event_keys") == 0
    finally:
        await connection.close()
    lines = [
        line
        for line in gateway.json_lines()
        if line["event"] == "webhook.processed" and line["outcome"] == "timeout"
    ]
    assert [(line["provider"], line["status"]) for line in lines] == [("sendgrid", 408)]


async def test_stalled_admin_body_gets_408_and_nothing_is_done(
    fresh_db_url: str, tmp_path: Path
) -> None:
    """An admin request (read by Litestar) whose JSON body stops half-way is answered 408
    problem+json and closed; the half-sent suppression is not added."""
    async with (
        run_gateway(_config(fresh_db_url, tmp_path), tmp_path, clean_environment()) as gateway,
        httpx.AsyncClient(base_url=gateway.url, timeout=10.0) as client,
    ):
        port = int(gateway.url.rsplit(":", 1)[1])
        body = b'{"address": "slow@example.com", "note": "never finished"}'
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = [
            b"POST /v1/suppressions HTTP/1.1",
            b"Host: 127.0.0.1",
            f"Authorization: Bearer {ADMIN_TOKEN}".encode(),
            b"Content-Type: application/json",
            f"Content-Length: {len(body)}".encode(),
        ]
        writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body[:20])
        await writer.drain()
        try:
            reply = await _read_until_closed(reader)
        finally:
            writer.close()
        auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        listed = (await client.get("/v1/suppressions", headers=auth)).json()
    assert reply.startswith(b"HTTP/1.1 408 "), reply
    assert b"application/problem+json" in reply
    assert listed["items"] == []
    assert any(line["event"] == "http.body_deadline_exceeded" for line in gateway.json_lines())


async def test_worker_port_has_the_header_deadline_too(fresh_db_url: str, tmp_path: Path) -> None:
    """``hookline worker`` serves /healthz and /metrics with the same header deadline: a
    connection that stops mid-header gets 408 and is closed."""
    config_path = tmp_path / "worker.toml"
    config_path.write_text(to_toml(_config(fresh_db_url, tmp_path)), encoding="utf-8")
    port = free_port()
    with (tmp_path / "worker.stderr").open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "gateway.cli", "worker", "--config", str(config_path)),
            *("--host", "127.0.0.1", "--port", str(port)),
            cwd=ROOT,
            env=clean_environment(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                for _ in range(600):
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get("/healthz")).status_code == 200:
                            break
                    assert process.returncode is None, (tmp_path / "worker.stderr").read_text()
                    await asyncio.sleep(0.1)
            reader, writer = await _stall_in_headers(port)
            try:
                reply = await _read_until_closed(reader)
            finally:
                writer.close()
        finally:
            process.terminate()
            await process.wait()
    assert reply.startswith(b"HTTP/1.1 408 "), reply
