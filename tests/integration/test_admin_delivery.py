"""The admin API and CLI for the DLQ and the suppression list, against a running gateway
(real HTTP, real PostgreSQL, a real local sink)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.cli import main as cli
from gateway.delivery import webhook_id
from hookline_testing import samples_for
from tests.integration.delivery_support import Reply, SinkServer, sink, sink_servers
from tests.integration.test_delivery_gateway import SOURCE, eventually, post

TOKEN = "admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Switchable:
    """A sink behaviour the test can change: 410 until told otherwise."""

    def __init__(self, status: int = 410) -> None:
        self.status = status

    def __call__(self, _: int) -> Reply:
        return Reply(self.status)


async def dead_letters(gw: Any, count: int) -> list[dict[str, Any]]:
    async def enough() -> bool:
        response = await gw.client.get("/v1/dlq", params={"limit": 500}, headers=AUTH)
        return len(response.json()["items"]) >= count

    await eventually(enough)
    response = await gw.client.get("/v1/dlq", params={"limit": 500}, headers=AUTH)
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def run_cli(gw: Any, *argv: str) -> tuple[int, str]:
    """Run ``hookline ...`` against the gateway and return (exit code, stdout). In a thread:
    the CLI's client is blocking. (Not capsys: the gateway configures logging while the
    test runs, and must not keep a per-test stream that is closed afterwards.)"""
    args = [*argv, "--url", gw.url, "--token", TOKEN]

    def call() -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            try:
                code = cli(args)
            except SystemExit as exc:
                code = int(exc.code or 0)
        return code, out.getvalue()

    return await asyncio.to_thread(call)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/dlq"),
        ("GET", "/v1/dlq/1"),
        ("POST", "/v1/dlq/1/replay"),
        ("POST", "/v1/dlq/replay"),
        ("DELETE", "/v1/dlq/1"),
        ("GET", "/v1/suppressions"),
        ("GET", "/v1/suppressions/a@example.com"),
        ("POST", "/v1/suppressions"),
        ("DELETE", "/v1/suppressions/a@example.com"),
    ],
)
async def test_admin_endpoints_require_the_bearer_token(
    gateway_factory: Any, method: str, path: str
) -> None:
    """401 problem+json without a token or with a wrong one."""
    async with gateway_factory(admin={"token": TOKEN}) as gw:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            response = await gw.client.request(method, path, headers=headers, json={})
            assert response.status_code == 401
            assert response.headers["content-type"].startswith("application/problem+json")


async def test_dlq_list_filter_paginate_show_replay_and_delete(gateway_factory: Any) -> None:
    """Entries appear in the DLQ, page by keyset cursor, filter by sink, show their event
    and history; replaying one delivers it once (a second replay is 404); deleting one
    removes it; unknown ids are 404 and bad input 400."""
    behaviour = Switchable()
    crm, other = SinkServer(behaviour), SinkServer(lambda _: Reply(410))
    async with sink_servers(crm, other):
        sinks = [sink("crm", crm), sink("other", other, event_types=["bounced"])]
        async with gateway_factory(sources=[SOURCE], sinks=sinks, admin={"token": TOKEN}) as gw:
            await post(gw, samples_for("sendgrid").example_body(5, seed=51))
            await post(gw, samples_for("sendgrid").example_body(1, seed=52, event="bounce"))
            items = await dead_letters(gw, 7)
            assert {item["sink"] for item in items} == {"crm", "other"}
            ids = [item["id"] for item in items]
            assert ids == sorted(ids, reverse=True)  # newest first

            seen: list[int] = []
            cursor = None
            while True:
                params: dict[str, Any] = {"sink": "crm", "limit": 2}
                if cursor:
                    params["cursor"] = cursor
                page = (await gw.client.get("/v1/dlq", params=params, headers=AUTH)).json()
                assert len(page["items"]) <= 2
                seen += [item["id"] for item in page["items"]]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            assert len(seen) == 6 and len(set(seen)) == 6

            entry_id = seen[-1]
            entry = (await gw.client.get(f"/v1/dlq/{entry_id}", headers=AUTH)).json()
            assert entry["reason"] == "permanent"
            assert entry["last_status"] == 410
            assert entry["history"][0]["status"] == 410
            assert entry["event"]["data"]["dedup_key"] == entry["dedup_key"]
            assert entry["webhook_id"] == webhook_id("crm", entry["dedup_key"])

            behaviour.status = 200
            replayed = await gw.client.post(f"/v1/dlq/{entry_id}/replay", headers=AUTH)
            assert replayed.status_code == 200, replayed.text
            again = await gw.client.post(f"/v1/dlq/{entry_id}/replay", headers=AUTH)
            assert again.status_code == 404
            await eventually(lambda: entry["webhook_id"] in crm.ids()[6:])
            await asyncio.sleep(0.3)
            assert crm.ids().count(entry["webhook_id"]) == 2  # the 410, then one success

            victim = seen[0]
            assert (await gw.client.delete(f"/v1/dlq/{victim}", headers=AUTH)).status_code == 204
            assert (await gw.client.delete(f"/v1/dlq/{victim}", headers=AUTH)).status_code == 404
            assert (await gw.client.get(f"/v1/dlq/{victim}", headers=AUTH)).status_code == 404

            for params in ({"cursor": "abc"}, {"limit": 0}, {"limit": 501}):
                bad = await gw.client.get("/v1/dlq", params=params, headers=AUTH)
                assert bad.status_code == 400, params
                assert bad.headers["content-type"].startswith("application/problem+json")
            remaining = await dead_letters(gw, 5)
            assert len(remaining) == 5
            await eventually(lambda: gw.metric("hookline_dlq_events", sink="crm") == 4)


async def test_bulk_replay_by_sink_and_time_range_runs_in_the_background(
    gateway_factory: Any,
) -> None:
    """POST /v1/dlq/replay answers 202 with a job; the job replays the sink's entries in the
    range, each delivered once; an empty range matches nothing; bad input is 400."""
    behaviour = Switchable()
    crm = SinkServer(behaviour)
    async with (
        sink_servers(crm),
        gateway_factory(sources=[SOURCE], sinks=[sink("crm", crm)], admin={"token": TOKEN}) as gw,
    ):
        await post(gw, samples_for("sendgrid").example_body(4, seed=61))
        items = await dead_letters(gw, 4)
        behaviour.status = 200
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        empty = await gw.client.post(
            "/v1/dlq/replay", json={"sink": "crm", "since": future}, headers=AUTH
        )
        assert empty.status_code == 202 and empty.json()["matched"] == 0

        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        started = await gw.client.post(
            "/v1/dlq/replay", json={"sink": "crm", "since": since}, headers=AUTH
        )
        assert started.status_code == 202, started.text
        job = started.json()
        assert job["matched"] == 4 and job["sink"] == "crm"

        async def job_done() -> bool:
            status = await gw.client.get(f"/v1/dlq/replay/{job['job_id']}", headers=AUTH)
            return bool(status.json()["status"] == "done")

        await eventually(job_done)
        await eventually(lambda: len(crm.received) == 8)
        await asyncio.sleep(0.3)
        successes = crm.ids()[4:]
        assert sorted(successes) == sorted(item["webhook_id"] for item in items)
        assert (await gw.client.get("/v1/dlq", headers=AUTH)).json()["items"] == []

        unknown_sink = await gw.client.post("/v1/dlq/replay", json={"sink": "nope"}, headers=AUTH)
        assert unknown_sink.status_code == 409
        for body in (
            {"since": since},
            {"sink": "crm", "since": future, "until": since},
            {"sink": "crm", "extra": 1},
        ):
            bad = await gw.client.post("/v1/dlq/replay", json=body, headers=AUTH)
            assert bad.status_code == 400, body
        assert (await gw.client.get("/v1/dlq/replay/unknown", headers=AUTH)).status_code == 404


async def test_suppressions_api_add_get_list_and_remove(gateway_factory: Any) -> None:
    """Manual entries: 201 when added, 200 with the existing entry when already there;
    lookups are case-insensitive; the list pages and filters; removal is 204 then 404."""
    async with gateway_factory(admin={"token": TOKEN}) as gw:
        created = await gw.client.post(
            "/v1/suppressions", json={"address": "Ann@Example.com", "note": "asked"}, headers=AUTH
        )
        assert created.status_code == 201, created.text
        assert created.json()["reason"] == "manual"
        assert created.json()["note"] == "asked"
        again = await gw.client.post(
            "/v1/suppressions", json={"address": "ann@example.com"}, headers=AUTH
        )
        assert again.status_code == 200
        assert again.json()["address"] == "Ann@example.com", "canonical: domain lower-cased"
        assert gw.metric("hookline_suppressions_added_total", reason="manual") == 1

        found = await gw.client.get("/v1/suppressions/ANN@example.COM", headers=AUTH)
        assert found.status_code == 200 and found.json()["reason"] == "manual"

        for n in range(4):
            await gw.client.post(
                "/v1/suppressions", json={"address": f"p{n}+x@example.com"}, headers=AUTH
            )
        plus = await gw.client.get("/v1/suppressions/p1%2Bx@example.com", headers=AUTH)
        assert plus.status_code == 200

        addresses: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2, "reason": "manual"}
            if cursor:
                params["cursor"] = cursor
            page = (await gw.client.get("/v1/suppressions", params=params, headers=AUTH)).json()
            addresses += [item["address"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert addresses == sorted(addresses, key=str.lower) and len(addresses) == 5
        other = await gw.client.get(
            "/v1/suppressions", params={"reason": "complaint"}, headers=AUTH
        )
        assert other.json() == {"items": [], "next_cursor": None}

        removed = await gw.client.delete("/v1/suppressions/ann@example.com", headers=AUTH)
        assert removed.status_code == 204
        assert (
            await gw.client.delete("/v1/suppressions/ann@example.com", headers=AUTH)
        ).status_code == 404
        assert (
            await gw.client.get("/v1/suppressions/ann@example.com", headers=AUTH)
        ).status_code == 404

        for bad in (
            gw.client.post("/v1/suppressions", json={"address": "not-an-address"}, headers=AUTH),
            gw.client.post("/v1/suppressions", json={"addr": "a@example.com"}, headers=AUTH),
            gw.client.get("/v1/suppressions", params={"reason": "whim"}, headers=AUTH),
            gw.client.get("/v1/suppressions/nobody", headers=AUTH),
        ):
            response = await bad
            assert response.status_code == 400
            assert response.headers["content-type"].startswith("application/problem+json")


async def test_cli_manages_suppressions_and_the_dlq(gateway_factory: Any) -> None:
    """``hookline suppressions ...`` and ``hookline dlq ...`` drive the same API; errors
    exit 1 with the server's detail."""
    behaviour = Switchable()
    crm = SinkServer(behaviour)
    async with (
        sink_servers(crm),
        gateway_factory(sources=[SOURCE], sinks=[sink("crm", crm)], admin={"token": TOKEN}) as gw,
    ):
        code, out = await run_cli(gw, "suppressions", "add", "c@example.com", "--note", "cli")
        assert (code, out.strip()) == (0, "suppressed c@example.com")
        code, out = await run_cli(gw, "suppressions", "list", "--json")
        assert [item["address"] for item in json.loads(out)["items"]] == ["c@example.com"]
        code, out = await run_cli(gw, "suppressions", "list")
        assert "c@example.com" in out and "manual" in out
        code, out = await run_cli(gw, "suppressions", "get", "C@example.com")
        assert json.loads(out)["note"] == "cli"
        code, _ = await run_cli(gw, "suppressions", "remove", "c@example.com")
        assert code == 0
        code, _ = await run_cli(gw, "suppressions", "get", "c@example.com")
        assert code == 1

        await post(gw, samples_for("sendgrid").example_body(3, seed=71))
        items = await dead_letters(gw, 3)
        code, out = await run_cli(gw, "dlq", "list", "--sink", "crm", "--limit", "2", "--all")
        assert code == 0
        assert all(str(item["id"]) in out for item in items)
        code, out = await run_cli(gw, "dlq", "show", str(items[0]["id"]))
        assert json.loads(out)["id"] == items[0]["id"]
        behaviour.status = 200
        code, out = await run_cli(gw, "dlq", "replay", str(items[0]["id"]))
        assert (code, out.strip()) == (0, f"replayed DLQ entry {items[0]['id']}")
        code, out = await run_cli(gw, "dlq", "delete", str(items[1]["id"]))
        assert code == 0
        code, out = await run_cli(gw, "dlq", "replay-all", "--sink", "crm", "--wait")
        assert (code, out.strip()) == (0, "replay done: 1 of 1 entries")
        await eventually(lambda: len(crm.received) == 5)
        code, _ = await run_cli(gw, "dlq", "show", "999999")
        assert code == 1
