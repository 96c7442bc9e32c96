"""GET /v1/events against a real gateway and PostgreSQL: every filter, ordering, include=raw,
keyset pagination under concurrent inserts, bad input (400) and the admin token (401)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec

from handlers.events import BounceClass, EmailEvent, EventType
from hookline_testing import samples_for

TOKEN = "query-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BASE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def ev(
    key: str,
    event_type: str = "delivered",
    *,
    minute: float = 0,
    provider: str = "sendgrid",
    source: str = "main",
    recipient: str | None = "a@example.com",
    message_id: str | None = "m1",
    campaign: str | None = None,
    tags: tuple[str, ...] = (),
    metadata: dict[str, Any] | None = None,
    **fields: Any,
) -> EmailEvent:
    return EmailEvent(
        provider=provider,
        source=source,
        event_type=EventType(event_type),
        occurred_at=BASE + timedelta(minutes=minute),
        received_at=datetime.now(UTC),
        recipient=recipient,
        message_id=message_id,
        dedup_key=key,
        campaign=campaign,
        tags=tags,
        metadata=metadata or {},
        raw={"key": key, "event": event_type},
        **fields,
    )


FIXTURE = [
    ev("e1", minute=0, campaign="spring", tags=("news",), metadata={"order_id": "o-1"}),
    ev(
        "e2",
        "opened",
        minute=5,
        recipient="A@Example.COM",
        campaign="spring",
        tags=("news", "promo"),
        metadata={"order_id": "o-1"},
    ),
    ev(
        "e3",
        "bounced",
        minute=10,
        provider="mailgun",
        source="eu",
        recipient="b@example.com",
        message_id="m2",
        campaign="summer",
        tags=("promo",),
        metadata={"order_id": 42},
        bounce_class=BounceClass.HARD,
        reason="mailbox does not exist",
    ),
    ev(
        "e4",
        minute=15,
        provider="mailgun",
        source="eu",
        recipient="c@example.com",
        message_id="m3",
        metadata={"user": "u-9"},
    ),
    ev(
        "e5",
        "clicked",
        minute=20,
        provider="postmark",
        source="pm",
        message_id="m4",
        campaign="spring",
        tags=("news",),
        metadata={"order_id": "o-2"},
        url="https://example.com/a",
    ),
    ev(
        "e6",
        "complained",
        minute=25,
        provider="ses",
        source="ses",
        recipient="b@example.com",
        message_id="m5",
        campaign="summer",
    ),
]


async def keys(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get("/v1/events", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    return [item["dedup_key"] for item in response.json()["items"]]


async def test_every_filter_returns_exactly_the_matching_events(gateway_factory: Any) -> None:
    """Each filter alone and in combination returns exactly the events it should, newest
    first; recipient matching ignores case; metadata matches typed values too."""
    async with gateway_factory(admin={"token": TOKEN}) as gw:
        await gw.runtime.database.store.write_events(FIXTURE)
        cases: list[tuple[dict[str, Any], list[str]]] = [
            ({}, ["e6", "e5", "e4", "e3", "e2", "e1"]),
            ({"recipient": "a@EXAMPLE.com"}, ["e5", "e2", "e1"]),
            ({"message_id": "m1"}, ["e2", "e1"]),
            ({"provider": "mailgun"}, ["e4", "e3"]),
            ({"provider": "mailgun,ses"}, ["e6", "e4", "e3"]),
            ({"source": "eu"}, ["e4", "e3"]),
            ({"event_type": "delivered"}, ["e4", "e1"]),
            ({"event_type": "bounced,complained"}, ["e6", "e3"]),
            ({"campaign": "spring"}, ["e5", "e2", "e1"]),
            ({"tag": "news"}, ["e5", "e2", "e1"]),
            ({"tag": ["news", "promo"]}, ["e2"]),
            ({"metadata": "order_id:o-1"}, ["e2", "e1"]),
            ({"metadata": "order_id:42"}, ["e3"]),
            ({"metadata": ["order_id:o-1", "user:u-9"]}, []),
            ({"metadata": "user:u-9"}, ["e4"]),
            ({"since": "2024-05-01T12:10:00Z"}, ["e6", "e5", "e4", "e3"]),
            ({"until": "2024-05-01T12:10:00Z"}, ["e2", "e1"]),
            (
                {"since": "2024-05-01T12:05:00Z", "until": "2024-05-01T12:20:00Z"},
                ["e4", "e3", "e2"],
            ),
            ({"since": "2024-05-01T14:00:00+02:00", "until": "2024-05-01T12:06:00"}, ["e2", "e1"]),
            ({"provider": "sendgrid", "event_type": "opened"}, ["e2"]),
            ({"campaign": "summer", "recipient": "b@example.com", "tag": "promo"}, ["e3"]),
            ({"recipient": "nobody@example.com"}, []),
        ]
        for params, expected in cases:
            assert await keys(gw.client, **params) == expected, params


async def test_items_carry_the_normalized_fields_and_raw_on_request(gateway_factory: Any) -> None:
    """Items have the DESIGN.md fields; ``raw`` is null unless include=raw."""
    async with gateway_factory(admin={"token": TOKEN}) as gw:
        await gw.runtime.database.store.write_events(FIXTURE)
        plain = (
            await gw.client.get("/v1/events", params={"message_id": "m2"}, headers=AUTH)
        ).json()
        item = plain["items"][0]
        assert item["provider"] == "mailgun" and item["source"] == "eu"
        assert item["event_type"] == "bounced" and item["bounce_class"] == "hard"
        assert item["recipient"] == "b@example.com" and item["message_id"] == "m2"
        assert item["occurred_at"] == "2024-05-01T12:10:00Z"
        assert item["reason"] == "mailbox does not exist"
        assert item["campaign"] == "summer" and item["tags"] == ["promo"]
        assert item["metadata"] == {"order_id": 42}
        assert item["machine_open"] is False and item["url"] is None
        assert item["raw"] is None
        assert plain["next_cursor"] is None
        with_raw = await gw.client.get(
            "/v1/events", params={"message_id": "m2", "include": "raw"}, headers=AUTH
        )
        assert with_raw.json()["items"][0]["raw"] == {"key": "e3", "event": "bounced"}


async def test_pagination_has_no_gaps_or_repeats_under_concurrent_inserts(
    gateway_factory: Any,
) -> None:
    """Paging 7 at a time through 300 events while new events (older and newer, some at
    the very same instant) are inserted between pages returns every original event exactly
    once, in strict (occurred_at, id) descending order."""
    rng = random.Random(7)
    originals = [
        ev(f"orig-{i}", minute=rng.randrange(0, 120), recipient=f"r{i}@example.com")
        for i in range(300)
    ]
    async with gateway_factory(admin={"token": TOKEN}) as gw:
        store = gw.runtime.database.store
        await store.write_events(originals)
        stop = asyncio.Event()
        inserted = 0

        async def writer() -> None:
            nonlocal inserted
            while not stop.is_set():
                batch = [
                    ev(f"new-{inserted + j}", minute=rng.randrange(-10, 130)) for j in range(5)
                ]
                await store.write_events(batch)
                inserted += len(batch)
                await asyncio.sleep(0.005)

        task = asyncio.create_task(writer())
        seen: list[tuple[str, str, int]] = []
        cursor = None
        pages = 0
        try:
            while True:
                params: dict[str, Any] = {"limit": 7}
                if cursor:
                    params["cursor"] = cursor
                page = (await gw.client.get("/v1/events", params=params, headers=AUTH)).json()
                seen += [(i["dedup_key"], i["occurred_at"], i["id"]) for i in page["items"]]
                pages += 1
                cursor = page["next_cursor"]
                if cursor is None:
                    break
                await asyncio.sleep(0.01)
        finally:
            stop.set()
            await task
        assert inserted > 0 and pages > 40
        keys_seen = [key for key, _, _ in seen]
        assert len(keys_seen) == len(set(keys_seen)), "an event was returned twice"
        assert {e.dedup_key for e in originals} <= set(keys_seen), "an original event was skipped"
        order = [(datetime.fromisoformat(at), event_id) for _, at, event_id in seen]
        assert order == sorted(order, reverse=True) and len(set(order)) == len(order)


async def test_bad_input_is_400_naming_the_reason(gateway_factory: Any) -> None:
    """Malformed dates, unknown filters, oversized limits and bad cursors are 400
    problem+json that say what is wrong."""
    async with gateway_factory(admin={"token": TOKEN}) as gw:
        cases = [
            ({"since": "last tuesday"}, "since"),
            ({"until": "2024-02-30"}, "until"),
            ({"colour": "red"}, "colour"),
            ({"limit": "5000"}, "limit"),
            ({"limit": "-1"}, "limit"),
            ({"cursor": "garbage"}, "cursor"),
            ({"event_type": "read"}, "event_type"),
            ({"provider": "hotmail"}, "provider"),
            ({"metadata": "nocolon"}, "metadata"),
            ({"since": "2024-05-02", "until": "2024-05-01"}, "since"),
            ({"recipient": "a\x00b@example.com"}, "recipient"),
        ]
        for params, word in cases:
            response = await gw.client.get("/v1/events", params=params, headers=AUTH)
            assert response.status_code == 400, (params, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert word in response.text, (params, response.text)
        for path, params in [
            ("/v1/stats", {"group_by": "week"}),
            ("/v1/stats", {"since": "soon"}),
            ("/v1/stats", {"limit": "100000"}),
            ("/v1/recipients", {}),
            ("/v1/recipients", {"inactive_days": "abc"}),
            ("/v1/recipients/a@example.com", {"limit": "100000"}),
            ("/v1/messages/m1", {"provider": "nope"}),
            ("/v1/messages/m1", {"colour": "red"}),
            ("/v1/recipients/a@example.com", {"colour": "red"}),
            ("/v1/recipients", {"inactive_days": "30", "colour": "red"}),
            ("/v1/stats", {"colour": "red"}),
            ("/v1/stats", {"provider": "nope"}),
            ("/v1/stats", {"group_by": "day,hour"}),
            ("/v1/stats", {"group_by": "tag", "campaign": "spring"}),
        ]:
            response = await gw.client.get(path, params=params, headers=AUTH)
            assert response.status_code == 400, (path, params, response.text)


async def test_admin_token_is_required_on_every_read_endpoint(gateway_factory: Any) -> None:
    """No token, a wrong token or another scheme is 401 everywhere under the read API."""
    async with gateway_factory(admin={"token": TOKEN}) as gw:
        paths = [
            "/v1/events",
            "/v1/messages/m1",
            "/v1/recipients/a@example.com",
            "/v1/recipients?inactive_days=30",
            "/v1/stats",
        ]
        for path in paths:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                response = await gw.client.get(path, headers=headers)
                assert response.status_code == 401, (path, headers)
                assert response.json()["title"] == "Unauthorized"
            assert (await gw.client.get(path, headers=AUTH)).status_code in (200, 404)


async def test_metadata_search_finds_one_message_across_providers(gateway_factory: Any) -> None:
    """The sender's own message id in SendGrid custom args and Mailgun user-variables,
    received as real signed webhooks, is found by one metadata search."""
    sg_spec, sg_key = samples_for("sendgrid").make_source("sg")
    mg_spec, mg_key = samples_for("mailgun").make_source("mg")
    sources = [
        {"provider": "sendgrid", "name": "sg", "signing_key": sg_spec.signing_key},
        {"provider": "mailgun", "name": "mg", "signing_key": mg_spec.signing_key},
    ]
    sg_items = msgspec.json.decode(samples_for("sendgrid").example_body(2, seed=11))
    sg_items[0]["our_message_id"] = "ours-123"
    sg_items[1]["our_message_id"] = "ours-999"
    sg_body = msgspec.json.encode(sg_items)
    mg_body_obj = msgspec.json.decode(
        samples_for("mailgun").example_body(1, seed=5, event="opened")
    )
    mg_body_obj["event-data"]["user-variables"]["our_message_id"] = "ours-123"
    mg_body = msgspec.json.encode(mg_body_obj)
    async with gateway_factory(admin={"token": TOKEN}, sources=sources) as gw:
        now = datetime.now(UTC)
        for spec, material, body, path in (
            (sg_spec, sg_key, sg_body, "/webhooks/sendgrid/sg"),
            (mg_spec, mg_key, mg_body, "/webhooks/mailgun/mg"),
        ):
            request = samples_for(spec.provider).signed_request(
                spec, material, body, now=now, url=gw.url + path
            )
            response = await gw.client.post(path, content=request.body, headers=request.headers)
            assert response.status_code == 200, response.text
        found = (
            await gw.client.get(
                "/v1/events", params={"metadata": "our_message_id:ours-123"}, headers=AUTH
            )
        ).json()["items"]
        assert sorted(item["provider"] for item in found) == ["mailgun", "sendgrid"]
        by_provider = {item["provider"]: item for item in found}
        assert by_provider["sendgrid"]["message_id"] == "msg0000000b00000000"
        assert by_provider["mailgun"]["message_id"] == "20231114221320.5.ABCDEF@mg.example.org"
        assert by_provider["mailgun"]["event_type"] == "opened"
        timeline = await gw.client.get(
            "/v1/messages/20231114221320.5.ABCDEF@mg.example.org", headers=AUTH
        )
        assert timeline.status_code == 200
        assert timeline.json()["status"] == {"user5@example.com": "opened"}
