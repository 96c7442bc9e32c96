"""The suppression list fed by events (real PostgreSQL, dispatcher passes on a manual
clock): immediate reasons, soft-bounce quarantine, resubscribe, case-insensitivity,
precedence between reasons, and exactly-once processing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.clock import ManualClock
from gateway.delivery.payload import decode_signal
from handlers.events import BounceClass, EventType
from tests.integration.delivery_support import delivery_stack, event

BOUNCED, COMPLAINED = EventType.BOUNCED, EventType.COMPLAINED
UNSUBSCRIBED, RESUBSCRIBED = EventType.UNSUBSCRIBED, EventType.RESUBSCRIBED
HARD, SOFT = BounceClass.HARD, BounceClass.SOFT


async def test_hard_bounce_complaint_and_unsubscribe_suppress_at_once(fresh_db_url: str) -> None:
    """Each puts its address on the list with the reason and the causing event; other event
    types never reach the processor."""
    clock = ManualClock()
    async with delivery_stack(fresh_db_url, clock=clock) as stack:
        now = clock.now()
        events = [
            event(1, event_type=BOUNCED, bounce_class=HARD, recipient="a@example.com", at=now),
            event(2, event_type=COMPLAINED, recipient="b@example.com", at=now),
            event(3, event_type=UNSUBSCRIBED, recipient="c@example.com", at=now),
            event(4, event_type=EventType.DELIVERED, recipient="d@example.com", at=now),
        ]
        await stack.write(events)
        assert await stack.scalar("SELECT count(*) FROM outbox") == 3
        await stack.drain()
        listed = {e.address: e for e in await stack.service.suppression_list.list()}
        assert {a: e.reason for a, e in listed.items()} == {
            "a@example.com": "hard_bounce",
            "b@example.com": "complaint",
            "c@example.com": "unsubscribe",
        }
        assert listed["a@example.com"].dedup_key == events[0].dedup_key
        assert listed["a@example.com"].provider == "sendgrid"
        assert listed["a@example.com"].expires_at is None
        for reason in ("hard_bounce", "complaint", "unsubscribe"):
            assert stack.metric("hookline_suppressions_added_total", reason=reason) == 1
        assert await stack.scalar("SELECT count(*) FROM outbox") == 0


async def test_addresses_are_compared_case_insensitively(fresh_db_url: str) -> None:
    """``User@Example.COM`` and ``user@example.com`` are one entry, found either way."""
    clock = ManualClock()
    async with delivery_stack(fresh_db_url, clock=clock) as stack:
        await stack.write(
            [event(1, event_type=UNSUBSCRIBED, recipient="User@Example.COM", at=clock.now())]
        )
        await stack.drain()
        entry = await stack.service.suppression_list.get("user@example.com")
        assert entry is not None and entry.address == "User@example.com"
        clock.advance(1)
        await stack.write(
            [event(2, event_type=COMPLAINED, recipient="USER@example.com", at=clock.now())]
        )
        await stack.drain()
        entries = await stack.service.suppression_list.list()
        assert [(e.key, e.reason) for e in entries] == [("user@example.com", "complaint")]


async def test_soft_bounces_quarantine_after_the_threshold_within_the_window(
    fresh_db_url: str,
) -> None:
    """Two soft bounces do nothing; the third within the window quarantines the address
    until the quarantine ends; soft bounces older than the window do not count."""
    clock = ManualClock()
    async with delivery_stack(
        fresh_db_url,
        clock=clock,
        suppressions={
            "soft_bounce_threshold": 3,
            "soft_bounce_window_seconds": 7 * 86400,
            "soft_bounce_quarantine_seconds": 86400,
        },
    ) as stack:
        address = "soft@example.com"
        old = clock.now() - timedelta(days=8)
        await stack.write(
            [event(0, event_type=BOUNCED, bounce_class=SOFT, recipient=address, at=old)]
        )
        await stack.drain()
        for n in (1, 2):
            clock.advance(3600)
            await stack.write(
                [event(n, event_type=BOUNCED, bounce_class=SOFT, recipient=address, at=clock.now())]
            )
            await stack.drain()
            assert await stack.service.suppression_list.get(address) is None
        clock.advance(3600)
        third = event(3, event_type=BOUNCED, bounce_class=None, recipient=address, at=clock.now())
        await stack.write([third])
        await stack.drain()
        entry = await stack.service.suppression_list.get(address)
        assert entry is not None
        assert (entry.reason, entry.dedup_key) == ("soft_bounce", third.dedup_key)
        assert entry.expires_at == clock.now() + timedelta(days=1)
        assert stack.metric("hookline_suppressions_added_total", reason="soft_bounce") == 1
        clock.advance(86400)
        assert await stack.service.suppression_list.get(address) is None
        assert await stack.service.suppression_list.list() == []


async def test_resubscribe_lifts_an_unsubscribe_but_not_a_hard_bounce(fresh_db_url: str) -> None:
    """``resubscribed`` removes an earlier unsubscribe; a hard bounce or complaint stays."""
    clock = ManualClock()
    async with delivery_stack(fresh_db_url, clock=clock) as stack:
        at = clock.now()
        await stack.write(
            [
                event(1, event_type=UNSUBSCRIBED, recipient="u@example.com", at=at),
                event(2, event_type=BOUNCED, bounce_class=HARD, recipient="h@example.com", at=at),
            ]
        )
        await stack.drain()
        later = clock.advance(300)
        await stack.write(
            [
                event(3, event_type=RESUBSCRIBED, recipient="U@example.com", at=later),
                event(4, event_type=RESUBSCRIBED, recipient="h@example.com", at=later),
            ]
        )
        await stack.drain()
        assert await stack.service.suppression_list.get("u@example.com") is None
        entry = await stack.service.suppression_list.get("h@example.com")
        assert entry is not None and entry.reason == "hard_bounce"


async def test_unsubscribe_then_resubscribe_in_one_batch_leaves_the_address_free(
    fresh_db_url: str,
) -> None:
    """Within one batch events apply in event-time order: unsubscribe then resubscribe
    leaves nothing; resubscribe then unsubscribe leaves an unsubscribe."""
    clock = ManualClock()
    async with delivery_stack(fresh_db_url, clock=clock) as stack:
        later = clock.now()
        at = later - timedelta(seconds=1)
        await stack.write(
            [
                event(1, event_type=RESUBSCRIBED, recipient="x@example.com", at=later),
                event(2, event_type=UNSUBSCRIBED, recipient="x@example.com", at=at),
                event(3, event_type=RESUBSCRIBED, recipient="y@example.com", at=at),
                event(4, event_type=UNSUBSCRIBED, recipient="y@example.com", at=later),
            ]
        )
        await stack.drain()
        assert await stack.service.suppression_list.get("x@example.com") is None
        entry = await stack.service.suppression_list.get("y@example.com")
        assert entry is not None and entry.reason == "unsubscribe"


async def test_a_stronger_reason_replaces_a_weaker_one_and_not_the_reverse(
    fresh_db_url: str,
) -> None:
    """unsubscribe -> complaint upgrades (and counts); a later unsubscribe leaves the
    complaint; a manual entry does not override a hard bounce."""
    clock = ManualClock()
    async with delivery_stack(fresh_db_url, clock=clock) as stack:
        address = "p@example.com"
        for n, kind in enumerate((UNSUBSCRIBED, COMPLAINED, UNSUBSCRIBED)):
            clock.advance(1)
            await stack.write([event(n, event_type=kind, recipient=address, at=clock.now())])
            await stack.drain()
        entry = await stack.service.suppression_list.get(address)
        assert entry is not None and entry.reason == "complaint"
        assert stack.metric("hookline_suppressions_added_total", reason="unsubscribe") == 1
        assert stack.metric("hookline_suppressions_added_total", reason="complaint") == 1

        await stack.write(
            [
                event(
                    9,
                    event_type=BOUNCED,
                    bounce_class=HARD,
                    recipient="q@example.com",
                    at=clock.now(),
                )
            ]
        )
        await stack.drain()
        kept, created = await stack.service.suppression_list.add("Q@example.com", "by hand")
        assert (kept.reason, created) == ("hard_bounce", False)
        added, created = await stack.service.suppression_list.add("r@example.com", "by hand")
        assert (added.reason, added.note, created) == ("manual", "by hand", True)
        assert stack.metric("hookline_suppressions_added_total", reason="manual") == 1


async def test_a_redelivered_soft_bounce_is_counted_once(fresh_db_url: str) -> None:
    """The same soft bounce event stored twice (ESP retry) counts once towards the
    threshold, so two distinct soft bounces plus a duplicate do not quarantine."""
    clock = ManualClock()
    async with delivery_stack(fresh_db_url, clock=clock) as stack:
        address = "dup@example.com"
        first = event(1, event_type=BOUNCED, bounce_class=SOFT, recipient=address, at=clock.now())
        second = event(2, event_type=BOUNCED, bounce_class=SOFT, recipient=address, at=clock.now())
        for batch in ([first], [first], [second, first]):
            await stack.write(batch)
            await stack.drain()
        assert await stack.scalar("SELECT count(*) FROM soft_bounces") == 2
        assert await stack.service.suppression_list.get(address) is None


async def test_removing_an_address_also_resets_its_soft_bounce_count(fresh_db_url: str) -> None:
    """After an operator removes a quarantine, counting starts afresh."""
    clock = ManualClock()
    async with delivery_stack(
        fresh_db_url, clock=clock, suppressions={"soft_bounce_threshold": 2}
    ) as stack:
        address = "reset@example.com"
        for n in (1, 2):
            await stack.write(
                [event(n, event_type=BOUNCED, bounce_class=SOFT, recipient=address, at=clock.now())]
            )
            await stack.drain()
        assert await stack.service.suppression_list.get(address) is not None
        assert await stack.service.suppression_list.remove(address) is True
        assert await stack.service.suppression_list.remove(address) is False
        await stack.write(
            [event(3, event_type=BOUNCED, bounce_class=SOFT, recipient=address, at=clock.now())]
        )
        await stack.drain()
        assert await stack.service.suppression_list.get(address) is None


async def test_soft_bounces_older_than_the_window_are_forgotten(fresh_db_url: str) -> None:
    """A new soft bounce deletes its address's soft bounces that fell out of the counting
    window; the periodic ``prune`` deletes those of every address, keeps the ones still
    inside the window, and returns how many it deleted."""
    clock = ManualClock()
    window = 7 * 86400
    async with delivery_stack(
        fresh_db_url,
        clock=clock,
        suppressions={"soft_bounce_threshold": 10, "soft_bounce_window_seconds": window},
    ) as stack:
        start = clock.now()
        old = [
            event(n, event_type=BOUNCED, bounce_class=SOFT, recipient=f"{n}@example.com", at=start)
            for n in (1, 2)
        ]
        await stack.write(old)
        await stack.drain()
        assert await stack.scalar("SELECT count(*) FROM soft_bounces") == 2

        clock.advance(window + 3600)  # both old bounces are out of the window now
        again = event(
            3, event_type=BOUNCED, bounce_class=SOFT, recipient="1@example.com", at=clock.now()
        )
        await stack.write([again])
        await stack.drain()
        remaining = await stack.rows("SELECT dedup_key FROM soft_bounces ORDER BY dedup_key")
        assert [r["dedup_key"] for r in remaining] == [old[1].dedup_key, again.dedup_key]

        assert await stack.service.suppressions.prune() == 1
        remaining = await stack.rows("SELECT dedup_key FROM soft_bounces")
        assert [r["dedup_key"] for r in remaining] == [again.dedup_key]
        assert await stack.service.suppressions.prune() == 0


@pytest.mark.parametrize("quarantine_seconds", [0, 1])
async def test_a_zero_quarantine_lasts_until_removed_and_a_short_one_still_ends(
    fresh_db_url: str, quarantine_seconds: int
) -> None:
    """``soft_bounce_quarantine_seconds = 0`` quarantines an address with no end (it is
    still listed a year later); any positive value, even one second, ends the
    quarantine that many seconds after it began."""
    clock = ManualClock()
    async with delivery_stack(
        fresh_db_url,
        clock=clock,
        suppressions={
            "soft_bounce_threshold": 1,
            "soft_bounce_quarantine_seconds": quarantine_seconds,
        },
    ) as stack:
        address = "q@example.com"
        await stack.write(
            [event(1, event_type=BOUNCED, bounce_class=SOFT, recipient=address, at=clock.now())]
        )
        await stack.drain()
        entry = await stack.service.suppression_list.get(address)
        assert entry is not None and entry.reason == "soft_bounce"
        if quarantine_seconds == 0:
            assert entry.expires_at is None
            clock.advance(365 * 86400)
            assert await stack.service.suppression_list.get(address) is not None
        else:
            assert entry.expires_at == clock.now() + timedelta(seconds=1)
            clock.advance(1)
            assert await stack.service.suppression_list.get(address) is None


async def test_the_list_pages_filters_and_adds_manual_entries_once(fresh_db_url: str) -> None:
    """The admin view of the list: 50 entries a page by default in address order,
    ``after`` continues, ``limit`` shortens, ``reason`` filters, an active quarantine is
    listed; an entry says when its event happened and when it was listed; a manual add
    keeps the address as written (domain lower-cased, spaces trimmed) and adding it again
    changes nothing."""
    clock = ManualClock()
    async with delivery_stack(
        fresh_db_url,
        clock=clock,
        suppressions={"soft_bounce_threshold": 1, "soft_bounce_quarantine_seconds": 86400},
    ) as stack:
        suppressions = stack.service.suppression_list
        for n in range(51):
            _, added = await suppressions.add(f"m{n:02d}@example.com")
            assert added
        entry, added = await suppressions.add("m00@example.com", note="again")
        assert not added and entry.note is None
        assert stack.metric("hookline_suppressions_added_total", reason="manual") == 51
        entry, added = await suppressions.add("  Mixed@Example.COM ")
        assert added and entry.address == "Mixed@example.com"

        happened = clock.now() - timedelta(hours=2)
        await stack.write(
            [
                event(1, event_type=UNSUBSCRIBED, recipient="u@example.com", at=happened),
                event(
                    2, event_type=BOUNCED, bounce_class=SOFT, recipient="s@example.com", at=happened
                ),
            ]
        )
        clock.advance(60)
        await stack.drain()
        unsubscribed = await suppressions.get("u@example.com")
        assert unsubscribed is not None
        assert unsubscribed.occurred_at == happened and unsubscribed.created_at == clock.now()

        first = await suppressions.list()
        assert [e.key for e in first] == [f"m{n:02d}@example.com" for n in range(50)]
        rest = await suppressions.list(after=first[-1].key)
        assert [e.key for e in rest] == [
            "m50@example.com",
            "mixed@example.com",
            "s@example.com",
            "u@example.com",
        ]
        assert len(await suppressions.list(limit=3)) == 3
        assert [e.key for e in await suppressions.list(reason="unsubscribe")] == ["u@example.com"]
        quarantined = await suppressions.list(reason="soft_bounce")
        assert [e.key for e in quarantined] == ["s@example.com"]
        assert quarantined[0].expires_at is not None


async def test_a_quarantine_names_its_latest_bounce_and_a_new_bounce_renews_it(
    fresh_db_url: str,
) -> None:
    """In one batch, an address below the threshold is not listed and does not stop the
    next address from being quarantined. The quarantine names its latest soft bounce
    (event, provider, time) and keeps the address as written (domain lower-cased); a
    further soft bounce during the quarantine starts a new period from now."""
    clock = ManualClock()
    async with delivery_stack(
        fresh_db_url,
        clock=clock,
        suppressions={"soft_bounce_threshold": 2, "soft_bounce_quarantine_seconds": 86400},
    ) as stack:
        early, late = clock.now() - timedelta(hours=2), clock.now() - timedelta(hours=1)
        latest = event(
            3, event_type=BOUNCED, bounce_class=SOFT, recipient="Soft@Example.COM", at=late
        )
        await stack.write(
            [
                event(
                    1, event_type=BOUNCED, bounce_class=SOFT, recipient="a@example.com", at=early
                ),
                event(
                    2, event_type=BOUNCED, bounce_class=SOFT, recipient="soft@example.com", at=early
                ),
                latest,
            ]
        )
        await stack.drain()
        assert await stack.service.suppression_list.get("a@example.com") is None
        entry = await stack.service.suppression_list.get("soft@example.com")
        assert entry is not None and entry.reason == "soft_bounce"
        assert (entry.dedup_key, entry.provider, entry.occurred_at) == (
            latest.dedup_key,
            "sendgrid",
            late,
        )
        assert entry.address == "Soft@example.com"
        assert entry.expires_at == clock.now() + timedelta(days=1)

        clock.advance(3600)
        await stack.write(
            [
                event(
                    4,
                    event_type=BOUNCED,
                    bounce_class=SOFT,
                    recipient="soft@example.com",
                    at=clock.now(),
                )
            ]
        )
        await stack.drain()
        renewed = await stack.service.suppression_list.get("soft@example.com")
        assert renewed is not None and renewed.expires_at == clock.now() + timedelta(days=1)
        assert stack.metric("hookline_suppressions_added_total", reason="soft_bounce") == 1


async def test_a_row_whose_claim_was_lost_is_left_to_its_new_owner_and_the_rest_apply(
    fresh_db_url: str,
) -> None:
    """A processor pass whose claim on one row was taken over (its lease ran out and
    another pass claimed it) leaves that row alone, for its new owner, and still applies
    every other row it claimed: none is deleted from the outbox without being applied."""
    clock = ManualClock()
    async with delivery_stack(fresh_db_url, clock=clock) as stack:
        await stack.write(
            [
                event(1, event_type=COMPLAINED, recipient="a@example.com", at=clock.now()),
                event(2, event_type=COMPLAINED, recipient="b@example.com", at=clock.now()),
            ]
        )
        rows = await stack.service.queue.claim(clock.now(), limit=10, lease_seconds=60, sinks=[])
        assert len(rows) == 2
        lost = rows[0]
        async with stack.store.pool.acquire() as conn:
            await conn.execute(
                "UPDATE outbox SET claim_token = gen_random_uuid() WHERE id = $1", lost.id
            )
        assert await stack.service.suppressions.process(rows) == 1
        listed = [e.key for e in await stack.service.suppression_list.list()]
        kept = decode_signal(rows[1].payload).recipient
        assert decode_signal(lost.payload).recipient != kept
        assert listed == [kept]
        assert await stack.scalar("SELECT id FROM outbox") == lost.id
