"""GET /v1/stats: counts and every rate on a hand-computed fixture, each grouping, the time
window, filters, and that the numbers come from rollups maintained with the events (equal
to a recount of the raw events, unmoved by redeliveries, kept when events are gone)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.query.compaction import RollupCompactor
from gateway.query.counters import COUNTER_COLUMNS
from handlers.events import BounceClass, EmailEvent, EventType

TOKEN = "query-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
H12 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
H13 = H12 + timedelta(hours=1)
WINDOW = {"since": "2024-04-30", "until": "2024-05-02"}


def ev(
    key: str,
    event_type: str,
    recipient: str,
    *,
    at: datetime = H12,
    minute: float = 0,
    provider: str = "sendgrid",
    source: str = "main",
    campaign: str | None = "spring",
    tags: tuple[str, ...] = ("news",),
    message_id: str | None = None,
    **fields: Any,
) -> EmailEvent:
    return EmailEvent(
        provider=provider,
        source=source,
        event_type=EventType(event_type),
        occurred_at=at + timedelta(minutes=minute),
        received_at=datetime.now(UTC),
        recipient=recipient,
        message_id=message_id or f"msg-{recipient.split('@')[0].lower()}",
        dedup_key=key,
        campaign=campaign,
        tags=tags,
        **fields,
    )


def spring_batches() -> list[list[EmailEvent]]:
    """Campaign "spring" (sendgrid/main, hour 12, tag news). Hand count:
    8 delivered; 2 bounced (1 hard, 1 soft); 1 dropped; 6 opens of which 2 machine, unique
    opens 4 (r1 r2 r3 r4), unique human opens 3 (r1 r2 r4); 3 clicks, unique 2 (r1 r2);
    1 complaint; 1 unsubscribe."""
    delivered = [ev(f"sd{i}", "delivered", f"r{i}@x.com", minute=i) for i in range(1, 9)]
    return [
        delivered,
        [
            ev("sb9", "bounced", "r9@x.com", bounce_class=BounceClass.HARD),
            ev("sb10", "bounced", "r10@x.com", bounce_class=BounceClass.SOFT),
            ev("sx11", "dropped", "r11@x.com"),
            ev("so1a", "opened", "r1@x.com", minute=20),
            ev("so1b", "opened", "R1@x.com", minute=21),  # same batch, same message: not unique
            ev("so2m", "opened", "r2@x.com", minute=22, machine_open=True),
        ],
        [
            ev("so2h", "opened", "r2@x.com", minute=23),  # first human open of r2, later batch
            ev("so3m", "opened", "r3@x.com", minute=24, machine_open=True),
            ev("so4", "opened", "r4@x.com", minute=25),
            ev("sc1a", "clicked", "r1@x.com", minute=30),
        ],
        [
            ev("sc1b", "clicked", "r1@x.com", minute=31),
            ev("sc2", "clicked", "r2@x.com", minute=32),
            ev("sp5", "complained", "r5@x.com", minute=40),
            ev("su6", "unsubscribed", "r6@x.com", minute=41),
        ],
    ]


def summer_batches() -> list[list[EmailEvent]]:
    """Campaign "summer" (mailgun/eu, hour 13, tags news+promo): 4 delivered, 1 hard
    bounce, 1 human open and 1 click by s1."""
    common: dict[str, Any] = {
        "at": H13,
        "provider": "mailgun",
        "source": "eu",
        "campaign": "summer",
        "tags": ("news", "promo"),
    }
    return [
        [ev(f"md{i}", "delivered", f"s{i}@x.com", minute=i, **common) for i in range(1, 5)]
        + [
            ev("mb5", "bounced", "s5@x.com", bounce_class=BounceClass.HARD, **common),
            ev("mo1", "opened", "s1@x.com", minute=10, **common),
            ev("mc1", "clicked", "s1@x.com", minute=11, **common),
        ]
    ]


SPRING_RATES = {
    "delivery_rate": 8 / 11,
    "unique_open_rate": 3 / 8,
    "unique_open_rate_with_machine": 4 / 8,
    "click_rate": 2 / 8,
    "click_to_open_rate": 2 / 3,
    "bounce_rate": 2 / 10,
    "hard_bounce_rate": 1 / 10,
    "soft_bounce_rate": 1 / 10,
    "complaint_rate": 1 / 8,
    "unsubscribe_rate": 1 / 8,
}
SUMMER_RATES = {
    "delivery_rate": 4 / 5,
    "unique_open_rate": 1 / 4,
    "unique_open_rate_with_machine": 1 / 4,
    "click_rate": 1 / 4,
    "click_to_open_rate": 1.0,
    "bounce_rate": 1 / 5,
    "hard_bounce_rate": 1 / 5,
    "soft_bounce_rate": 0.0,
    "complaint_rate": 0.0,
    "unsubscribe_rate": 0.0,
}
BOTH_RATES = {
    "delivery_rate": 12 / 16,
    "unique_open_rate": 4 / 12,
    "unique_open_rate_with_machine": 5 / 12,
    "click_rate": 3 / 12,
    "click_to_open_rate": 3 / 4,
    "bounce_rate": 3 / 15,
    "hard_bounce_rate": 2 / 15,
    "soft_bounce_rate": 1 / 15,
    "complaint_rate": 1 / 12,
    "unsubscribe_rate": 1 / 12,
}


def assert_rates(group: dict[str, Any], expected: dict[str, float]) -> None:
    for name, value in expected.items():
        assert group["rates"][name] == pytest.approx(value, abs=1e-6), (group["key"], name)


async def seed(gw: Any) -> None:
    store = gw.runtime.database.store
    for batch in spring_batches() + summer_batches():
        await store.write_events(batch)


async def stats(gw: Any, **params: Any) -> dict[str | None, dict[str, Any]]:
    response = await gw.client.get("/v1/stats", params={**WINDOW, **params}, headers=AUTH)
    assert response.status_code == 200, response.text
    return {group["key"]: group for group in response.json()["groups"]}


async def test_each_rate_matches_its_definition_on_a_hand_computed_fixture(
    gateway_factory: Any,
) -> None:
    """Per campaign: counts per event type, the breakdowns and every rate equal the hand
    count in the fixture docstrings (unique opens across batches, machine opens apart)."""
    async with gateway_factory(admin={"token": TOKEN}) as gw:
        await seed(gw)
        groups = await stats(gw, group_by="campaign")
        spring, summer = groups["spring"], groups["summer"]
        assert spring["counts"] == {
            "queued": 0, "sent": 0, "delivered": 8, "deferred": 0, "bounced": 2,
            "dropped": 1, "opened": 6, "clicked": 3, "complained": 1, "unsubscribed": 1,
            "resubscribed": 0, "auto_replied": 0, "unknown": 0,
        }  # fmt: skip
        assert spring["details"] == {
            "hard_bounces": 1, "soft_bounces": 1, "undetermined_bounces": 0,
            "machine_opens": 2, "unique_opens": 4, "unique_human_opens": 3, "unique_clicks": 2,
        }  # fmt: skip
        assert_rates(spring, SPRING_RATES)
        assert summer["counts"]["delivered"] == 4 and summer["counts"]["bounced"] == 1
        assert_rates(summer, SUMMER_RATES)
        assert list(groups) == ["spring", "summer"], "largest group first"


async def test_every_grouping_and_the_time_window(gateway_factory: Any) -> None:
    """provider, source, tag, day and hour groupings split the same events as expected;
    an event without a campaign is the null campaign; since/until select whole hours
    overlapping the window; filters narrow it."""
    async with gateway_factory(admin={"token": TOKEN}) as gw:
        await seed(gw)
        await gw.runtime.database.store.write_events(
            [ev("plain", "delivered", "p@x.com", at=H13, campaign=None, tags=())]
        )
        by_provider = await stats(gw, group_by="provider")
        assert by_provider["sendgrid"]["counts"]["delivered"] == 9
        assert by_provider["mailgun"]["counts"]["delivered"] == 4
        assert_rates(by_provider["mailgun"], SUMMER_RATES)
        by_source = await stats(gw, group_by="source")
        assert set(by_source) == {"main", "eu"}
        assert_rates(by_source["eu"], SUMMER_RATES)
        by_campaign = await stats(gw, group_by="campaign")
        assert by_campaign[None]["counts"]["delivered"] == 1
        by_tag = await stats(gw, group_by="tag")
        assert set(by_tag) == {"news", "promo"}, "untagged events are in no tag group"
        assert_rates(by_tag["news"], BOTH_RATES)
        assert_rates(by_tag["promo"], SUMMER_RATES)
        by_day = await stats(gw, group_by="day")
        assert list(by_day) == ["2024-05-01"]
        assert by_day["2024-05-01"]["counts"]["delivered"] == 13
        by_hour = await stats(gw, group_by="hour")
        assert list(by_hour) == ["2024-05-01T12:00:00Z", "2024-05-01T13:00:00Z"]
        assert_rates(by_hour["2024-05-01T12:00:00Z"], SPRING_RATES)

        def hours(groups: dict[str | None, Any]) -> list[str | None]:
            return list(groups)

        assert hours(await stats(gw, group_by="hour", since="2024-05-01T13:00:00Z")) == [
            "2024-05-01T13:00:00Z"
        ]
        assert hours(await stats(gw, group_by="hour", since="2024-05-01T12:59:59Z")) == [
            "2024-05-01T12:00:00Z",
            "2024-05-01T13:00:00Z",
        ]
        assert hours(await stats(gw, group_by="hour", until="2024-05-01T13:00:00Z")) == [
            "2024-05-01T12:00:00Z"
        ]
        assert await stats(gw, group_by="hour", since="2024-06-01", until="2024-06-02") == {}
        filtered = await stats(gw, group_by="day", campaign="spring")
        assert_rates(filtered["2024-05-01"], SPRING_RATES)
        mixed = await gw.client.get(
            "/v1/stats", params={**WINDOW, "group_by": "campaign", "tag": "promo"}, headers=AUTH
        )
        assert mixed.status_code == 400 and "span campaigns" in mixed.json()["detail"]
        only_mailgun = await stats(gw, group_by="tag", provider="mailgun")
        assert_rates(only_mailgun["news"], SUMMER_RATES)
        limited = await stats(gw, group_by="campaign", limit=1)
        assert list(limited) == ["spring"]


async def test_stats_come_from_rollups_and_redeliveries_do_not_count(
    gateway_factory: Any,
) -> None:
    """Redelivering the same events changes nothing; removing the raw events leaves the
    stats as they were (they are read from the rollups)."""
    async with gateway_factory(admin={"token": TOKEN}) as gw:
        await seed(gw)
        before = await stats(gw, group_by="campaign")
        await seed(gw)  # every dedup key again
        assert await stats(gw, group_by="campaign") == before
        async with gw.runtime.database.pool.acquire() as conn:
            await conn.execute("TRUNCATE events")
        assert await stats(gw, group_by="campaign") == before


async def test_rollups_equal_a_recount_of_random_events(gateway_factory: Any) -> None:
    """Random events in random batches (with redeliveries and machine opens), folded by
    the compactor in small transactions, give rollup sums equal to counting the stored raw
    events directly: in total, per hour, provider and campaign, and per hour and tag."""
    rng = random.Random(1234)
    types = ["delivered", "bounced", "opened", "clicked", "deferred", "complained", "dropped"]
    pool: list[EmailEvent] = []
    for i in range(600):
        event_type = rng.choice(types)
        recipient = f"u{rng.randrange(40)}@x.com"
        pool.append(
            ev(
                f"k{i}",
                event_type,
                recipient.upper() if rng.random() < 0.2 else recipient,
                at=H12 + timedelta(hours=rng.randrange(5)),
                minute=rng.randrange(60),
                provider=rng.choice(["sendgrid", "mailgun"]),
                campaign=rng.choice(["a", "b", None]),
                tags=tuple(rng.sample(["t1", "t2", "t3"], rng.randrange(3))),
                message_id=f"m{rng.randrange(10)}",
                machine_open=event_type == "opened" and rng.random() < 0.3,
                bounce_class=rng.choice(list(BounceClass)) if event_type == "bounced" else None,
            )
        )
    async with gateway_factory(admin={"token": TOKEN}) as gw:
        store = gw.runtime.database.store
        index = 0
        while index < len(pool):
            size = rng.randrange(1, 60)
            batch = pool[index : index + size]
            redelivered = rng.sample(pool[: index + 1], min(5, index + 1))
            await store.write_events(batch + redelivered)
            index += size
        assert await RollupCompactor(gw.runtime.database.pool, batch_rows=7).run_once() > 0
        async with gw.runtime.database.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM stats_pending") == 0
            sums = await conn.fetchrow(
                "SELECT "
                + ", ".join(f"sum({c})::bigint AS {c}" for c in COUNTER_COLUMNS)
                + " FROM stats_hourly"
            )
            raw = await conn.fetchrow(
                """SELECT
                     count(*) FILTER (WHERE event_type = 'delivered') AS delivered,
                     count(*) FILTER (WHERE event_type = 'bounced') AS bounced,
                     count(*) FILTER (WHERE bounce_class = 'hard') AS hard_bounced,
                     count(*) FILTER (WHERE bounce_class = 'soft') AS soft_bounced,
                     count(*) FILTER (WHERE event_type = 'opened') AS opened,
                     count(*) FILTER (WHERE event_type = 'opened' AND machine_open)
                         AS machine_opened,
                     count(DISTINCT (provider, message_id, lower(recipient)))
                         FILTER (WHERE event_type = 'opened') AS unique_opened,
                     count(DISTINCT (provider, message_id, lower(recipient)))
                         FILTER (WHERE event_type = 'opened' AND NOT machine_open)
                         AS unique_human_opened,
                     count(DISTINCT (provider, message_id, lower(recipient)))
                         FILTER (WHERE event_type = 'clicked') AS unique_clicked,
                     count(*) FILTER (WHERE event_type = 'clicked') AS clicked,
                     count(*) FILTER (WHERE event_type = 'complained') AS complained
                   FROM events"""
            )
            tag_rows = await conn.fetchval("SELECT sum(delivered) FROM stats_hourly_tags")
            raw_tags = await conn.fetchval(
                "SELECT count(*) FROM events, unnest(tags) WHERE event_type = 'delivered'"
            )
            per_key = await conn.fetch(
                "SELECT hour, provider, campaign, sum(delivered)::int, sum(opened)::int, "
                "sum(machine_opened)::int, sum(hard_bounced)::int FROM stats_hourly "
                "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
            )
            raw_per_key = await conn.fetch(
                "SELECT date_trunc('hour', occurred_at, 'UTC'), provider, "
                "coalesce(campaign, ''), count(*) FILTER (WHERE event_type = 'delivered')::int, "
                "count(*) FILTER (WHERE event_type = 'opened')::int, "
                "count(*) FILTER (WHERE machine_open)::int, "
                "count(*) FILTER (WHERE bounce_class = 'hard')::int "
                "FROM events GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
            )
            per_tag = await conn.fetch(
                "SELECT hour, tag, sum(delivered)::int, sum(opened)::int FROM stats_hourly_tags "
                "GROUP BY 1, 2 HAVING sum(delivered) + sum(opened) > 0 ORDER BY 1, 2"
            )
            raw_per_tag = await conn.fetch(
                "SELECT date_trunc('hour', occurred_at, 'UTC'), tag, "
                "count(*) FILTER (WHERE event_type = 'delivered')::int, "
                "count(*) FILTER (WHERE event_type = 'opened')::int "
                "FROM events, LATERAL (SELECT DISTINCT unnest(tags) AS tag) AS t GROUP BY 1, 2 "
                "HAVING count(*) FILTER (WHERE event_type IN ('delivered', 'opened')) > 0 "
                "ORDER BY 1, 2"
            )
        for column, value in dict(raw).items():
            assert sums[column] == value, column
        assert tag_rows == raw_tags
        assert [tuple(r) for r in per_key] == [tuple(r) for r in raw_per_key]
        assert [tuple(r) for r in per_tag] == [tuple(r) for r in raw_per_tag]


async def test_compaction_while_writing_never_changes_the_numbers(gateway_factory: Any) -> None:
    """Batches append pending tallies and the compactor folds them concurrently: at every
    moment the API's stats, per campaign and per tag, equal the final ones for what was
    written so far, and once compacted nothing is pending and the stats are unchanged."""
    async with gateway_factory(admin={"token": TOKEN}, server={"workers": False}) as gw:
        compactor = RollupCompactor(gw.runtime.database.pool, batch_rows=3)
        store = gw.runtime.database.store
        batches = spring_batches() + summer_batches()
        for batch in batches[:-1]:
            await asyncio.gather(store.write_events(batch), compactor.run_once())
        await store.write_events(batches[-1])
        async with gw.runtime.database.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM stats_pending") > 0
        before = await stats(gw, group_by="campaign")
        before_tags = await stats(gw, group_by="tag")
        assert_rates(before["spring"], SPRING_RATES)
        assert_rates(before["summer"], SUMMER_RATES)
        assert_rates(before_tags["news"], BOTH_RATES)
        await compactor.run_once()
        async with gw.runtime.database.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM stats_pending") == 0
        assert await stats(gw, group_by="campaign") == before
        assert await stats(gw, group_by="tag") == before_tags


async def test_rollups_are_kept_by_the_trigger_for_any_writer(gateway_factory: Any) -> None:
    """Events inserted by plain SQL (any writer, not only the store) are counted too, and a
    tag repeated within one event counts once for that tag."""
    async with gateway_factory(admin={"token": TOKEN}) as gw:
        async with gw.runtime.database.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO events (dedup_key, provider, source, event_type, occurred_at, "
                "received_at, recipient, message_id, campaign, tags) VALUES "
                "('sql-1', 'postmark', 'pm', 'delivered', '2024-05-01T12:30Z', now(), "
                "'x@x.com', 'm-sql', 'autumn', '{vip,vip,news}'), "
                "('sql-2', 'postmark', 'pm', 'opened', '2024-05-01T12:40Z', now(), "
                "'X@x.com', 'm-sql', 'autumn', '{vip}')"
            )
        by_tag = await stats(gw, group_by="tag", provider="postmark")
        assert by_tag["vip"]["counts"]["delivered"] == 1
        assert by_tag["vip"]["details"]["unique_human_opens"] == 1
        assert by_tag["news"]["counts"]["delivered"] == 1
        by_campaign = await stats(gw, group_by="campaign")
        assert_rates(by_campaign["autumn"], {"delivery_rate": 1.0, "unique_open_rate": 1.0})


async def test_each_kind_of_first_engagement_credits_its_own_first_event(
    gateway_factory: Any,
) -> None:
    """One row per message and recipient holds a bit per kind: a machine open, then a human
    open an hour later, then a click, each in its own batch, credit the unique open, the
    unique human open and the unique click to the hour of the event that set the bit;
    repeats credit nothing. A human open and a click in one batch set both bits at once."""
    h14 = H13 + timedelta(hours=1)
    batches = [
        [ev("m1", "opened", "a@x.com", machine_open=True)],
        [
            ev("h1", "opened", "A@x.com", at=H13),
            ev("m2", "opened", "a@x.com", at=H13, machine_open=True),
        ],
        [ev("c1", "clicked", "a@x.com", at=h14), ev("h2", "opened", "a@x.com", at=h14)],
        [ev("h3", "opened", "b@x.com", at=H13), ev("c2", "clicked", "b@x.com", at=H13)],
        [ev("c3", "clicked", "b@x.com", at=h14), ev("h4", "opened", "b@x.com", at=h14)],
    ]
    async with gateway_factory(admin={"token": TOKEN}) as gw:
        for batch in batches:
            await gw.runtime.database.store.write_events(batch)
        by_hour = await stats(gw, group_by="hour")
        async with gw.runtime.database.pool.acquire() as conn:
            kinds = await conn.fetch("SELECT kinds FROM first_engagements ORDER BY kinds")

    def details(hour: datetime) -> tuple[int, int, int]:
        found = by_hour[hour.strftime("%Y-%m-%dT%H:00:00Z")]["details"]
        return found["unique_opens"], found["unique_human_opens"], found["unique_clicks"]

    assert details(H12) == (1, 0, 0), "a's machine open"
    assert details(H13) == (1, 2, 1), "a's human open; b's open, human open and click"
    assert details(h14) == (0, 0, 1), "a's click; repeats credit nothing"
    assert [r["kinds"] for r in kinds] == [7, 7], "one row per message and recipient"
