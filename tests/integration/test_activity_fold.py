"""The recipient activity folder (``gateway/query/activity.py``) against real PostgreSQL:
reads give the same answer before and after any fold, rows received after their day ended
mark it for a refold, a day folds only once it has ended and no transaction from before its
end is open, and retention keeps a partition whose day is not folded."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

from gateway.query.activity import ActivityFolder
from gateway.query.filters import InactiveQuery, RecipientQuery
from gateway.query.reads import ReadService
from gateway.query.retention import Retention
from gateway.storage.store import EventStore
from handlers.events import EmailEvent, EventType

TODAY = datetime.now(UTC).date()
Days = tuple[date | None, date | None, date | None]


def at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def ev(
    key: str, recipient: str, event_type: str, occurred: date, received: date, **fields: object
) -> EmailEvent:
    return EmailEvent(
        provider="sendgrid",
        source="main",
        event_type=EventType(event_type),
        occurred_at=at(occurred, 10),
        received_at=min(at(received), datetime.now(UTC)),
        recipient=recipient,
        message_id=f"m-{key}",
        dedup_key=key,
        **fields,  # type: ignore[arg-type]
    )


def oracle(events: list[EmailEvent]) -> dict[str, Days]:
    """Each address's (first delivered, last delivered, last engaged) day, by hand."""
    found: dict[str, list[date]] = {}
    engaged: dict[str, list[date]] = {}
    for event in events:
        address, day = (event.recipient or "").lower(), event.occurred_at.date()
        if event.event_type == EventType.DELIVERED:
            found.setdefault(address, []).append(day)
        elif event.event_type == EventType.CLICKED or (
            event.event_type == EventType.OPENED and not event.machine_open
        ):
            engaged.setdefault(address, []).append(day)
    return {
        address: (
            min(found[address]) if address in found else None,
            max(found[address]) if address in found else None,
            max(engaged[address]) if address in engaged else None,
        )
        for address in sorted(set(found) | set(engaged))
    }


async def reads(service: ReadService, addresses: list[str]) -> tuple[object, ...]:
    """Every address's activity and the inactive lists for several cutoffs, paged by 7."""
    activity = {}
    for address in addresses:
        history = await service.recipient(address.upper(), RecipientQuery(limit=1))
        item = history.activity
        activity[address] = (
            None
            if item is None
            else (item.first_delivered_on, item.last_delivered_on, item.last_engaged_on)
        )
    lists = {}
    for days in (1, 3, 20, 60):
        cutoff, seen, after = TODAY - timedelta(days=days), [], None
        while True:
            page = await service.inactive(
                InactiveQuery(inactive_days=days, cutoff=cutoff, limit=7, after=after)
            )
            seen += [
                (i.address, i.first_delivered_on, i.last_delivered_on, i.last_engaged_on)
                for i in page.items
            ]
            if page.next_cursor is None:
                break
            after = seen[-1][0]
        lists[days] = seen
    return activity, lists


async def test_reads_are_the_same_before_and_after_each_fold(store: EventStore) -> None:
    """Random deliveries, opens (some machine opens) and clicks of 40 addresses, received
    over the last four days, and an address whose old delivery arrives today: every
    address's activity and every inactive list match a hand-computed oracle with nothing
    folded, after the late days are folded, and after today is folded too."""
    rng = random.Random(5)
    addresses = [f"user{i}@example.com" for i in range(40)]
    events = []
    for number in range(600):
        address = rng.choice(addresses)
        kind = rng.choice(["delivered", "delivered", "opened", "clicked", "bounced"])
        events.append(
            ev(
                f"e{number}",
                address.title() if number % 3 == 0 else address,
                kind,
                occurred=TODAY - timedelta(days=rng.randrange(0, 90)),
                received=TODAY - timedelta(days=rng.randrange(0, 4)),
                machine_open=kind == "opened" and rng.random() < 0.3,
            )
        )
    # folded: a recent delivery only; not folded: a delivery that happened 70 days ago
    events += [
        ev(
            "late-1",
            "late@example.com",
            "delivered",
            TODAY - timedelta(days=2),
            TODAY - timedelta(days=2),
        ),
        ev("late-2", "late@example.com", "delivered", TODAY - timedelta(days=70), TODAY),
    ]
    addresses.append("late@example.com")
    for start in range(0, len(events), 50):
        await store.write_events(events[start : start + 50])
    expected = oracle(events)
    service = ReadService(store.pool)
    wanted_lists = {
        days: [
            (address, *value)
            for address, value in expected.items()
            if value[0] is not None
            and value[0] <= TODAY - timedelta(days=days)
            and (value[2] is None or value[2] < TODAY - timedelta(days=days))
        ]
        for days in (1, 3, 20, 60)
    }
    wanted = ({a: expected.get(a) for a in addresses}, wanted_lists)
    assert "late@example.com" in [item[0] for item in wanted_lists[60]]

    assert await reads(service, addresses) == wanted, "nothing folded"
    folded = await ActivityFolder(store.pool).run_once()
    assert folded == [TODAY - timedelta(days=d) for d in (3, 2, 1)], "the late days"
    async with store.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM recipient_activity_late") == 0
    assert await reads(service, addresses) == wanted, "late days folded"
    tomorrow = at(TODAY + timedelta(days=1), 0) + timedelta(minutes=10)
    assert await ActivityFolder(store.pool).run_once(now=tomorrow) == [TODAY]
    assert await reads(service, addresses) == wanted, "today folded too"
    async with store.pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM recipient_activity ORDER BY address")
    assert {r["address"]: tuple(r.values())[1:] for r in rows} == expected


async def test_rows_received_after_their_day_mark_it_for_a_refold(store: EventStore) -> None:
    """A row stamped with a day that has ended (a drained spool) marks that day; reads see
    it at once, and the next pass folds the day again and clears the mark."""
    yesterday = TODAY - timedelta(days=1)
    await store.write_events([ev("a", "pat@example.com", "delivered", yesterday, yesterday)])
    folder = ActivityFolder(store.pool)
    assert await folder.run_once() == [yesterday]
    assert await folder.run_once() == [], "nothing new"

    await store.write_events([ev("b", "pat@example.com", "clicked", yesterday, yesterday)])
    async with store.pool.acquire() as conn:
        assert await conn.fetchval("SELECT array_agg(day) FROM recipient_activity_late") == [
            yesterday
        ]
        assert (
            await conn.fetchval(
                "SELECT last_engaged_on FROM recipient_activity WHERE address = 'pat@example.com'"
            )
            is None
        ), "not folded yet"
    history = await ReadService(store.pool).recipient("pat@example.com", RecipientQuery())
    assert history.activity is not None and history.activity.last_engaged_on == yesterday

    assert await folder.run_once() == [yesterday]
    async with store.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM recipient_activity_late") == 0
        assert (
            await conn.fetchval(
                "SELECT last_engaged_on FROM recipient_activity WHERE address = 'pat@example.com'"
            )
            == yesterday
        )


async def test_a_day_folds_after_its_grace_and_its_last_transaction(store: EventStore) -> None:
    """Today folds only once it has ended plus the grace period, and not while a
    transaction that began before its end is still open (it may hold rows stamped today)."""
    await store.write_events([ev("a", "kim@example.com", "delivered", TODAY, TODAY)])
    folder = ActivityFolder(store.pool, grace=timedelta(minutes=5))
    midnight = at(TODAY + timedelta(days=1), 0)
    assert await folder.run_once(now=midnight + timedelta(minutes=4)) == [], "in the grace"

    async with store.pool.acquire() as straggler:
        transaction = straggler.transaction()
        await transaction.start()
        await straggler.fetchval("SELECT count(*) FROM events")
        assert await folder.run_once(now=midnight + timedelta(minutes=6)) == []
        await transaction.commit()
    assert await folder.run_once(now=midnight + timedelta(minutes=6)) == [TODAY]
    async with store.pool.acquire() as conn:
        assert await conn.fetchval("SELECT open_from FROM recipient_activity_fold") == (
            TODAY + timedelta(days=1)
        )
        assert await conn.fetchval("SELECT count(*) FROM recipient_activity") == 1


async def test_retention_keeps_a_partition_whose_day_is_not_folded(store: EventStore) -> None:
    """A retention pass folds what has ended and drops it; today's partition, past the
    retention of a pass run a day ahead but not folded, is deferred, not dropped."""
    old = TODAY - timedelta(days=2)
    await store.write_events(
        [
            ev("old", "lee@example.com", "delivered", old, old),
            ev("new", "lee@example.com", "delivered", TODAY, TODAY),
        ]
    )
    report = await Retention(store, retention_days=1).run_once(now=at(TODAY + timedelta(days=2), 1))
    today_partition = f"events_{TODAY:%Y%m%d}"
    assert f"events_{old:%Y%m%d}" in report.dropped
    assert report.deferred == [today_partition]
    async with store.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM events") == 1
        first = await conn.fetchval(
            "SELECT first_delivered_on FROM recipient_activity WHERE address = 'lee@example.com'"
        )
    assert first == old, "the dropped day was folded first"
