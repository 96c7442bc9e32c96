"""The suppression rules as pure functions: batch reduction and write decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.delivery.payload import SuppressionSignal
from gateway.delivery.processors.suppressions import (
    Listing,
    address_key,
    decide_writes,
    plan_suppressions,
)

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def signal(
    kind: str, recipient: str, seconds: int = 0, bounce: str | None = None
) -> SuppressionSignal:
    return SuppressionSignal(
        dedup_key=f"k-{kind}-{recipient}-{seconds}",
        provider="sendgrid",
        event_type=kind,
        recipient=recipient,
        occurred_at=T0 + timedelta(seconds=seconds),
        bounce_class=bounce,
    )


def test_address_key_is_trimmed_and_lower_case() -> None:
    """Addresses compare case-insensitively, ignoring surrounding blanks."""
    assert address_key("  Bob@Example.COM ") == "bob@example.com"


def test_reasons_map_from_event_types() -> None:
    """Hard bounce, complaint and unsubscribe list the address with their reason."""
    plan = plan_suppressions(
        [
            signal("bounced", "h@x.io", bounce="hard"),
            signal("complained", "c@x.io"),
            signal("unsubscribed", "u@x.io"),
        ]
    )
    assert {k: v.reason for k, v in plan.listings.items()} == {
        "h@x.io": "hard_bounce",
        "c@x.io": "complaint",
        "u@x.io": "unsubscribe",
    }


def test_soft_and_undetermined_bounces_are_counted_not_listed() -> None:
    """Soft, undetermined and unclassified bounces count towards a quarantine only."""
    plan = plan_suppressions(
        [
            signal("bounced", "s@x.io", 1, bounce="soft"),
            signal("bounced", "S@x.io", 2, bounce="undetermined"),
            signal("bounced", "s@x.io", 3, bounce=None),
        ]
    )
    assert plan.listings == {}
    assert [key for key, _, _ in plan.soft_bounces] == ["s@x.io"] * 3
    assert plan.latest_soft["s@x.io"].occurred_at == T0 + timedelta(seconds=3)


def test_strongest_reason_in_a_batch_wins() -> None:
    """Several reasons for one address in a batch: the strongest is kept."""
    plan = plan_suppressions(
        [
            signal("complained", "a@x.io", 1),
            signal("unsubscribed", "a@x.io", 2),
            signal("bounced", "a@x.io", 3, bounce="hard"),
        ]
    )
    assert plan.listings["a@x.io"].reason == "hard_bounce"


def test_resubscribe_cancels_an_earlier_unsubscribe_in_the_batch_only() -> None:
    """Events apply in event-time order regardless of arrival order."""
    plan = plan_suppressions(
        [
            signal("resubscribed", "a@x.io", 5),
            signal("unsubscribed", "a@x.io", 1),
            signal("resubscribed", "b@x.io", 1),
            signal("unsubscribed", "b@x.io", 5),
            signal("complained", "c@x.io", 1),
            signal("resubscribed", "c@x.io", 5),
        ]
    )
    assert set(plan.listings) == {"b@x.io", "c@x.io"}
    assert plan.lifts == {
        "a@x.io": T0 + timedelta(seconds=5),
        "b@x.io": T0 + timedelta(seconds=1),
        "c@x.io": T0 + timedelta(seconds=5),
    }


def listing(reason: str) -> Listing:
    return Listing("a@x.io", "a@x.io", reason, "k", "sendgrid", T0)


def test_decide_writes_by_rank_and_expiry() -> None:
    """New addresses and upgrades count as added; equal or weaker reasons are skipped; an
    expired quarantine is replaced; a soft bounce renews a live quarantine without counting."""
    now = T0
    cases = [
        ("hard_bounce", None, True),
        ("complaint", ("unsubscribe", None), True),
        ("unsubscribe", ("complaint", None), None),
        ("hard_bounce", ("hard_bounce", None), None),
        ("unsubscribe", ("soft_bounce", now + timedelta(days=1)), True),
        ("soft_bounce", ("soft_bounce", now - timedelta(seconds=1)), True),
        ("soft_bounce", ("soft_bounce", now + timedelta(days=1)), False),
        ("soft_bounce", ("manual", None), None),
        ("manual", ("unsubscribe", None), True),
    ]
    for reason, existing, expected in cases:
        current = {"a@x.io": existing} if existing else {}
        writes = decide_writes([listing(reason)], current, now)
        outcome = writes[0][1] if writes else None
        assert outcome == expected, (reason, existing)


def test_auto_replies_are_neither_listed_nor_counted_as_soft_bounces() -> None:
    """An auto-reply (a mailbox answering) never lists an address nor counts towards a
    quarantine, whatever bounce class it carries."""
    plan = plan_suppressions(
        [
            signal("auto_replied", "a@x.io", 1),
            signal("auto_replied", "a@x.io", 2, bounce="soft"),
            signal("auto_replied", "a@x.io", 3, bounce="hard"),
        ]
    )
    assert plan.listings == {}
    assert plan.soft_bounces == []


def test_signals_that_ask_for_nothing_do_not_end_the_batch() -> None:
    """A signal without a recipient, or one that lists nothing (an auto-reply), is
    skipped; the signals after it in the batch still apply."""
    plan = plan_suppressions(
        [
            signal("complained", "", 1),
            signal("auto_replied", "a@x.io", 2),
            signal("complained", "b@x.io", 3),
        ]
    )
    assert set(plan.listings) == {"b@x.io"}


def test_the_first_of_equal_reasons_is_kept_and_a_weaker_one_never_replaces() -> None:
    """Two complaints for one address keep the first (its event is the cause); a later,
    weaker unsubscribe does not replace a hard bounce. The listing records its event."""
    plan = plan_suppressions(
        [
            signal("complained", "a@x.io", 1),
            signal("complained", "a@x.io", 2),
            signal("bounced", "b@x.io", 1, bounce="hard"),
            signal("unsubscribed", "b@x.io", 2),
        ]
    )
    first = plan.listings["a@x.io"]
    assert (first.dedup_key, first.occurred_at) == (
        "k-complained-a@x.io-1",
        T0 + timedelta(seconds=1),
    )
    assert (first.provider, first.address) == ("sendgrid", "a@x.io")
    assert plan.listings["b@x.io"].reason == "hard_bounce"


def test_several_resubscribes_lift_up_to_the_latest() -> None:
    """Two resubscribes for one address in a batch lift unsubscribes up to the later."""
    plan = plan_suppressions(
        [signal("resubscribed", "a@x.io", 7), signal("resubscribed", "a@x.io", 3)]
    )
    assert plan.lifts == {"a@x.io": T0 + timedelta(seconds=7)}


def test_a_quarantine_ending_exactly_now_has_ended() -> None:
    """A quarantine whose end is this very instant is over: a new soft bounce starts a new
    one and counts as an addition."""
    existing = {"a@x.io": ("soft_bounce", T0)}
    assert decide_writes([listing("soft_bounce")], existing, T0) == [(listing("soft_bounce"), True)]
