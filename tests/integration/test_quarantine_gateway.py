"""The quarantine seen from outside: a real gateway (real HTTP, real PostgreSQL), its webhook
responses, the admin API and the CLI, the spool while PostgreSQL is down, and readiness."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from gateway.storage.embedded import EmbeddedPostgres
from tests.integration._outage import restart
from tests.integration.conftest import build_settings, serve
from tests.integration.test_admin_delivery import run_cli
from tests.integration.test_delivery_gateway import eventually
from tests.integration.test_poison_storage import (
    REFUSE_POISON,
    SOURCES,
    item,
    rows,
    signed_json,
)

TOKEN = "admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def post(gw: Any, items: list[dict[str, Any]]) -> Any:
    content, headers = signed_json(msgspec.json.encode(items))
    return await gw.client.post("/webhooks/sendgrid/main", content=content, headers=headers)


async def test_store_stage_quarantine_admin_api_and_cli_round_trip(
    gateway_factory: Any, fresh_db_url: str
) -> None:
    """An event PostgreSQL refuses gets its request a 200 that says it was quarantined; the
    record is listed, shown, refused on replay (422, error kept) while the cause is there,
    503 while storage is unavailable, replayed by the CLI once the cause is gone, and
    deleted; bad ids are 404, never 500."""
    conn = await asyncpg.connect(fresh_db_url)
    try:
        await conn.execute(REFUSE_POISON)
    finally:
        await conn.close()
    async with gateway_factory(sources=SOURCES, admin={"token": TOKEN}) as gw:
        poison = item(1, reason="poison")
        response = await post(gw, [item(0), poison, item(2)])
        assert response.status_code == 200
        assert response.json() == {"accepted": 2, "duplicates": 0, "quarantined": 1}
        assert gw.runtime.storage_breaker.state == "closed"
        assert (
            gw.metric(
                "hookline_events_quarantined_total",
                provider="sendgrid",
                stage="store",
                reason="invalid_value",
            )
            == 1
        )

        assert (await gw.client.get("/v1/quarantine")).status_code == 401
        page = (await gw.client.get("/v1/quarantine", headers=AUTH)).json()
        (listed,) = page["items"]
        assert page["next_cursor"] is None
        assert listed["stage"] == "store" and listed["reason"] == "invalid_value"
        assert listed["dedup_key"] == f"sendgrid:{poison['sg_event_id']}"
        assert listed["raw"] == poison
        for stage, count in (("store", 1), ("parse", 0)):
            filtered = await gw.client.get(
                "/v1/quarantine", params={"stage": stage, "provider": "sendgrid"}, headers=AUTH
            )
            assert len(filtered.json()["items"]) == count
        record_id = listed["id"]
        shown = (await gw.client.get(f"/v1/quarantine/{record_id}", headers=AUTH)).json()
        assert shown["event"]["reason"] == "poison"

        refused = await gw.client.post(f"/v1/quarantine/{record_id}/replay", headers=AUTH)
        assert refused.status_code == 422
        assert refused.headers["content-type"].startswith("application/problem+json")
        shown = (await gw.client.get(f"/v1/quarantine/{record_id}", headers=AUTH)).json()
        assert "refused by test trigger" in shown["replay_error"]

        gw.runtime.storage_breaker.open()  # storage unavailable: 503, nothing recorded
        unavailable = await gw.client.post(f"/v1/quarantine/{record_id}/replay", headers=AUTH)
        assert unavailable.status_code == 503 and "retry-after" in unavailable.headers
        gw.runtime.storage_breaker.close()

        conn = await asyncpg.connect(fresh_db_url)
        try:
            await conn.execute("DROP TRIGGER refuse_poison ON events")
        finally:
            await conn.close()
        code, out = await run_cli(gw, "quarantine", "replay", str(record_id))
        assert code == 0 and "1 new event" in out
        stored = await rows(fresh_db_url, "SELECT reason FROM events WHERE reason = 'poison'")
        assert len(stored) == 1
        again = await gw.client.post(f"/v1/quarantine/{record_id}/replay", headers=AUTH)
        assert again.status_code == 409  # already replayed

        code, out = await run_cli(gw, "quarantine", "list", "--stage", "store")
        assert code == 0 and str(record_id) in out
        code, out = await run_cli(gw, "quarantine", "show", str(record_id))
        assert code == 0 and msgspec.json.decode(out)["replayed_at"] is not None
        code, out = await run_cli(gw, "quarantine", "delete", str(record_id))
        assert code == 0 and "deleted" in out
        gone = await gw.client.get(f"/v1/quarantine/{record_id}", headers=AUTH)
        assert gone.status_code == 404

        # digits that no record can have are a 404; anything else is refused as input (400)
        for bad, status in (
            ("0", 404),
            ("9223372036854775808", 404),
            ("-1", 400),
            ("99999999999999999999999", 400),
            ("x", 400),
            ("1%00", 400),
        ):
            for method, suffix in (("GET", ""), ("POST", "/replay"), ("DELETE", "")):
                answer = await gw.client.request(
                    method, f"/v1/quarantine/{bad}{suffix}", headers=AUTH
                )
                assert answer.status_code == status, (method, bad, answer.text)
                assert answer.headers["content-type"] == "application/problem+json"
        for cursor in ("abc", "99999999999999999999"):
            bad_cursor = await gw.client.get(
                "/v1/quarantine", params={"cursor": cursor}, headers=AUTH
            )
            assert bad_cursor.status_code == 400, cursor
        # a cursor below every id is an empty last page, not an error
        empty = await gw.client.get("/v1/quarantine", params={"cursor": "0"}, headers=AUTH)
        assert empty.status_code == 200
        assert empty.json() == {"items": [], "next_cursor": None}


async def test_parse_stage_rejects_are_quarantined_and_paginated(
    gateway_factory: Any, fresh_db_url: str
) -> None:
    """Items an adapter rejects are quarantined (stage parse, with field and raw item) while
    the valid ones are stored; the 200 says how many; a replay of a still-invalid item is a
    422 with the error kept; the list pages with a cursor."""
    async with gateway_factory(sources=SOURCES, admin={"token": TOKEN}) as gw:
        bad = [item(i, timestamp="not-a-time") for i in (1, 3)]
        response = await post(gw, [item(0), bad[0], item(2), bad[1]])
        assert response.status_code == 200
        assert response.json() == {"accepted": 2, "duplicates": 0, "quarantined": 2}
        assert len(await rows(fresh_db_url, "SELECT 1 FROM events")) == 2
        assert (
            gw.metric(
                "hookline_events_quarantined_total",
                provider="sendgrid",
                stage="parse",
                reason="invalid_item",
            )
            == 2
        )
        first = (await gw.client.get("/v1/quarantine?limit=1", headers=AUTH)).json()
        assert first["next_cursor"] is not None
        second = (
            await gw.client.get(
                "/v1/quarantine", params={"limit": 1, "cursor": first["next_cursor"]}, headers=AUTH
            )
        ).json()
        assert second["next_cursor"] is None
        records = first["items"] + second["items"]
        assert sorted(r["raw"]["sg_event_id"] for r in records) == sorted(
            b["sg_event_id"] for b in bad
        )
        assert {r["stage"] for r in records} == {"parse"}
        assert all(r["field"] and "timestamp" in r["field"] for r in records)
        replay = await gw.client.post(f"/v1/quarantine/{records[0]['id']}/replay", headers=AUTH)
        assert replay.status_code == 422 and "still invalid" in replay.json()["detail"]


async def test_rejects_are_spooled_while_postgres_is_down_and_drained_after(
    own_pg: EmbeddedPostgres, tmp_path: Path
) -> None:
    """PostgreSQL is down: a batch with a rejected item is still answered 200 (events and the
    rejected item in the spool); once PostgreSQL is back the drainer stores the events and
    writes the item to the quarantine table. Nothing acknowledged is lost."""
    settings = build_settings(
        own_pg.url(),
        tmp_path,
        sources=SOURCES,
        storage={"breaker_fail_max": 1, "breaker_reset_seconds": 0.5},
    )
    async with serve(settings) as gw:
        own_pg.stop("immediate")
        bad = item(1, timestamp="not-a-time", big=2**70)
        good = item(0, big=2**70)  # msgpack cannot encode it: spooled as its digits
        response = await post(gw, [good, bad])
        assert response.status_code == 200, response.text
        assert response.json() == {"accepted": 1, "duplicates": 0, "quarantined": 1}
        assert gw.metric("hookline_spool_events") == 2
        assert gw.metric("hookline_spool_oldest_event_age_seconds") > 0
        ready = await gw.client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["spool_state"] == "waiting"
        restart(own_pg)

        async def drained() -> bool:
            return gw.metric("hookline_spool_events") == 0

        await eventually(drained, timeout=30)
        assert gw.metric("hookline_spool_oldest_event_age_seconds") == 0
    kept = await rows(own_pg.url(), "SELECT stage, raw FROM quarantine")
    as_spooled = {**bad, "big": str(2**70)}
    assert [(r["stage"], msgspec.json.decode(r["raw"])) for r in kept] == [("parse", as_spooled)]
    (stored,) = await rows(own_pg.url(), "SELECT raw FROM events")
    assert msgspec.json.decode(stored["raw"]) == {**good, "big": str(2**70)}


async def test_readiness_fails_when_the_spool_is_stuck_and_recovers(
    gateway_factory: Any, fresh_db_url: str
) -> None:
    """The database answers but refuses every write (not a data error: an outage-like
    failure), so events pile up in the spool: /readyz says stuck (503) once nothing has
    drained for spool_stuck_seconds, and ready again once the spool drains."""
    refuse_all = """
    CREATE FUNCTION refuse_all() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'no writes' USING ERRCODE = 'insufficient_privilege'; END $$;
    CREATE TRIGGER refuse_all BEFORE INSERT ON event_keys
        FOR EACH ROW EXECUTE FUNCTION refuse_all();
    """
    conn = await asyncpg.connect(fresh_db_url)
    try:
        await conn.execute(refuse_all)
        async with gateway_factory(
            sources=SOURCES,
            storage={
                "breaker_fail_max": 1,
                "breaker_reset_seconds": 0.2,
                "spool_stuck_seconds": 1.0,
            },
        ) as gw:
            response = await post(gw, [item(0), item(1)])
            assert response.status_code == 200 and gw.metric("hookline_spool_events") == 2

            async def stuck() -> bool:
                answer = await gw.client.get("/readyz")
                return answer.status_code == 503 and answer.json()["spool_state"] == "stuck"

            await eventually(stuck, timeout=15)
            await conn.execute("DROP TRIGGER refuse_all ON event_keys")

            async def ready() -> bool:
                answer = await gw.client.get("/readyz")
                return answer.status_code == 200 and answer.json()["spool_state"] == "empty"

            await eventually(ready, timeout=15)
    finally:
        await conn.close()
    assert len(await rows(fresh_db_url, "SELECT 1 FROM events")) == 2
