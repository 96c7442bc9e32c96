"""GET /v1/messages/{id} (timeline and status per recipient), GET /v1/recipients/{address}
(history, counts, suppression) and GET /v1/recipients?inactive_days= (re-engagement)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from handlers.events import BounceClass, EmailEvent, EventType

TOKEN = "query-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BASE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def ev(
    key: str,
    event_type: str,
    recipient: str | None,
    *,
    at: datetime | None = None,
    minute: float = 0,
    message_id: str | None = "msg-1",
    provider: str = "sendgrid",
    **fields: Any,
) -> EmailEvent:
    return EmailEvent(
        provider=provider,
        source="main",
        event_type=EventType(event_type),
        occurred_at=at or BASE + timedelta(minutes=minute),
        received_at=datetime.now(UTC),
        recipient=recipient,
        message_id=message_id,
        dedup_key=key,
        raw={"k": key},
        **fields,
    )


async def test_message_timeline_is_in_time_order_with_status_per_recipient(
    gateway_factory: Any,
) -> None:
    """Events come back oldest first whatever order they arrived in; each recipient's
    status is the furthest state (clicked beats opened beats delivered, bounced beats
    deferred); recipients are case-folded."""
    events = [
        ev("x3", "clicked", "x@example.com", minute=9, url="https://e.com/"),
        ev("x1", "delivered", "X@Example.com", minute=1),
        ev("x2", "opened", "x@example.com", minute=5),
        ev("y2", "bounced", "y@example.com", minute=7, bounce_class=BounceClass.HARD),
        ev("y1", "deferred", "y@example.com", minute=2),
        ev("z1", "queued", "z@example.com", minute=0),
        ev("z2", "sent", "z@example.com", minute=0.5),
        ev("z3", "deferred", "z@example.com", minute=3),
        ev("other", "delivered", "x@example.com", minute=4, message_id="msg-2"),
    ]
    async with gateway_factory(admin={"token": TOKEN}) as gw:
        await gw.runtime.database.store.write_events(events[:4])
        await gw.runtime.database.store.write_events(events[4:])
        response = await gw.client.get("/v1/messages/msg-1", headers=AUTH)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["message_id"] == "msg-1"
        assert body["provider"] == "sendgrid" and body["providers"] == ["sendgrid"]
        assert body["recipients"] == ["x@example.com", "y@example.com", "z@example.com"]
        assert body["status"] == {
            "x@example.com": "clicked",
            "y@example.com": "bounced",
            "z@example.com": "deferred",
        }
        assert [e["dedup_key"] for e in body["events"]] == [
            "z1",
            "z2",
            "x1",
            "y1",
            "z3",
            "x2",
            "y2",
            "x3",
        ]
        assert body["truncated"] is False
        assert all(e["raw"] is None for e in body["events"])

        limited = (
            await gw.client.get(
                "/v1/messages/msg-1", params={"limit": 2, "include": "raw"}, headers=AUTH
            )
        ).json()
        assert [e["dedup_key"] for e in limited["events"]] == ["z1", "z2"]
        assert limited["truncated"] is True
        assert limited["events"][0]["raw"] == {"k": "z1"}
        assert limited["status"] == body["status"], "status covers every event, not the page"

        missing = await gw.client.get("/v1/messages/no-such-message", headers=AUTH)
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")


async def test_message_ids_shared_by_two_providers_can_be_told_apart(gateway_factory: Any) -> None:
    """Without ?provider the timeline merges both and lists both providers; with it, only
    that provider's events count."""
    async with gateway_factory(admin={"token": TOKEN}) as gw:
        await gw.runtime.database.store.write_events(
            [
                ev("a", "delivered", "a@example.com", message_id="same", provider="sendgrid"),
                ev("b", "bounced", "a@example.com", minute=1, message_id="same", provider="ses"),
            ]
        )
        both = (await gw.client.get("/v1/messages/same", headers=AUTH)).json()
        assert both["providers"] == ["sendgrid", "ses"]
        assert both["status"] == {"a@example.com": "bounced"}
        only = (
            await gw.client.get("/v1/messages/same", params={"provider": "sendgrid"}, headers=AUTH)
        ).json()
        assert only["providers"] == ["sendgrid"]
        assert only["status"] == {"a@example.com": "delivered"}


async def test_recipient_history_counts_latest_events_and_suppression(gateway_factory: Any) -> None:
    """The latest 100 events newest first, counts per type over all of them, the activity
    row, and the suppression entry (in force, or shown but expired)."""
    events = [
        ev(f"d{i}", "delivered", "Pat@Example.com", minute=i, message_id=f"m{i}")
        for i in range(100)
    ]
    events += [
        ev("o1", "opened", "pat@example.com", minute=200, message_id="m1"),
        ev("o2", "opened", "pat@example.com", minute=201, message_id="m2", machine_open=True),
        ev("c1", "clicked", "pat@example.com", minute=202, message_id="m1"),
        ev(
            "b1",
            "bounced",
            "pat@example.com",
            minute=203,
            message_id="m3",
            bounce_class=BounceClass.SOFT,
        ),
        ev("elsewhere", "delivered", "someone@example.com", minute=5),
    ]
    async with gateway_factory(admin={"token": TOKEN}) as gw:
        await gw.runtime.database.store.write_events(events)
        response = await gw.client.get("/v1/recipients/PAT@example.com", headers=AUTH)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["address"] == "pat@example.com"
        assert body["counts"] == {"delivered": 100, "bounced": 1, "opened": 2, "clicked": 1}
        assert len(body["events"]) == 100
        assert [e["dedup_key"] for e in body["events"][:5]] == ["b1", "c1", "o2", "o1", "d99"]
        assert body["events"][-1]["dedup_key"] == "d4"
        assert body["suppressed"] is False and body["suppression"] is None
        activity = body["activity"]
        assert activity["first_delivered_on"] == "2024-05-01"
        assert activity["last_delivered_on"] == "2024-05-01"
        assert activity["last_engaged_on"] == "2024-05-01"

        async with gw.runtime.database.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO suppressions (address_key, address, reason, dedup_key, provider) "
                "VALUES ('pat@example.com', 'Pat@Example.com', 'hard_bounce', 'b1', 'sendgrid')"
            )
            await conn.execute(
                "INSERT INTO suppressions (address_key, address, reason, expires_at) VALUES "
                "('someone@example.com', 'someone@example.com', 'soft_bounce', "
                "now() - interval '1 hour')"
            )
        body = (await gw.client.get("/v1/recipients/pat@example.com", headers=AUTH)).json()
        assert body["suppressed"] is True
        assert body["suppression"]["reason"] == "hard_bounce"
        assert body["suppression"]["dedup_key"] == "b1"
        expired = (await gw.client.get("/v1/recipients/someone@example.com", headers=AUTH)).json()
        assert expired["suppressed"] is False
        assert expired["suppression"]["reason"] == "soft_bounce"

        unknown = (await gw.client.get("/v1/recipients/new@example.com", headers=AUTH)).json()
        assert unknown["counts"] == {} and unknown["events"] == [] and unknown["activity"] is None


async def test_inactive_recipients_are_those_delivered_to_but_quiet(gateway_factory: Any) -> None:
    """inactive_days=60 lists addresses first delivered to on or before the day 60 days ago
    with no human open or click since (machine opens do not count), paged by address
    without gaps or repeats; recent recipients and engaged ones are not listed."""
    now = datetime.now(UTC)

    def days_ago(days: float) -> datetime:
        return now - timedelta(days=days)

    events = [
        ev("1", "delivered", "quiet-never@example.com", at=days_ago(100)),
        ev("2", "delivered", "engaged@example.com", at=days_ago(100)),
        ev("3", "opened", "engaged@example.com", at=days_ago(10)),
        ev("4", "delivered", "quiet-since@example.com", at=days_ago(100)),
        ev("5", "delivered", "quiet-since@example.com", at=days_ago(3)),
        ev("6", "opened", "quiet-since@example.com", at=days_ago(70)),
        ev("7", "delivered", "Machine-Only@example.com", at=days_ago(90)),
        ev("8", "opened", "machine-only@example.com", at=days_ago(5), machine_open=True),
        ev("9", "delivered", "newcomer@example.com", at=days_ago(5)),
        ev("10", "delivered", "clicker@example.com", at=days_ago(200)),
        ev("11", "clicked", "clicker@example.com", at=days_ago(1)),
        ev("12", "opened", "never-delivered@example.com", at=days_ago(100)),
        ev("13", "delivered", "quiet-too@example.com", at=days_ago(61)),
    ]
    expected = [
        "machine-only@example.com",
        "quiet-never@example.com",
        "quiet-since@example.com",
        "quiet-too@example.com",
    ]
    async with gateway_factory(admin={"token": TOKEN}) as gw:
        for event in events:  # one batch each: the upserts must merge across batches
            await gw.runtime.database.store.write_events([event])
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"inactive_days": 60, "limit": 3}
            if cursor:
                params["cursor"] = cursor
            response = await gw.client.get("/v1/recipients", params=params, headers=AUTH)
            assert response.status_code == 200, response.text
            page = response.json()
            seen += [item["address"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == expected
        one = (
            await gw.client.get("/v1/recipients", params={"inactive_days": 60}, headers=AUTH)
        ).json()["items"]
        quiet_since = next(i for i in one if i["address"] == "quiet-since@example.com")
        assert quiet_since["first_delivered_on"] == days_ago(100).date().isoformat()
        assert quiet_since["last_delivered_on"] == days_ago(3).date().isoformat()
        assert quiet_since["last_engaged_on"] == days_ago(70).date().isoformat()
        recent = (
            await gw.client.get("/v1/recipients", params={"inactive_days": 4}, headers=AUTH)
        ).json()["items"]
        assert "newcomer@example.com" in [i["address"] for i in recent]
