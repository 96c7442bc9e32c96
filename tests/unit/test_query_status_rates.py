"""Status derivation (furthest state per recipient) and each KPI's definition."""

from __future__ import annotations

import pytest

from gateway.query.rates import compute_details, compute_rates
from gateway.query.status import STATUS_PRECEDENCE, furthest_status
from handlers.events import EventType


@pytest.mark.parametrize(
    ("events", "status"),
    [
        (["queued", "sent", "deferred"], "deferred"),
        (["sent", "deferred", "bounced"], "bounced"),
        (["queued", "dropped"], "dropped"),
        (["delivered", "bounced"], "bounced"),
        (["delivered", "opened"], "opened"),
        (["delivered", "opened", "clicked"], "clicked"),
        (["clicked"], "clicked"),
        (["delivered", "clicked", "unsubscribed"], "unsubscribed"),
        (["delivered", "opened", "complained", "unsubscribed"], "complained"),
        (["bounced", "opened"], "opened"),
        (["unsubscribed", "resubscribed"], "unsubscribed"),
        (["resubscribed"], "resubscribed"),
        (["unknown", "queued"], "queued"),
        ([], "unknown"),
    ],
)
def test_furthest_status(events: list[str], status: str) -> None:
    """Bounced beats deferred and delivered; clicked beats opened beats delivered;
    complaints and unsubscribes win; engagement beats a bounce."""
    assert furthest_status(events) == status


def test_precedence_covers_every_event_type_once() -> None:
    """Every event type has exactly one rank."""
    assert sorted(STATUS_PRECEDENCE) == sorted(EventType)


def test_rates_follow_their_definitions() -> None:
    """Hand-computed: 90 delivered, 6 bounced (3 hard, 2 soft, 1 undetermined), 4 dropped,
    30 unique human opens (36 with machine opens), 9 unique clicks, 1 complaint,
    2 unsubscribes."""
    counts = {
        "delivered": 90,
        "bounced": 6,
        "hard_bounced": 3,
        "soft_bounced": 2,
        "dropped": 4,
        "opened": 50,
        "machine_opened": 8,
        "unique_opened": 36,
        "unique_human_opened": 30,
        "clicked": 12,
        "unique_clicked": 9,
        "complained": 1,
        "unsubscribed": 2,
    }
    rates = compute_rates(counts)
    assert rates.delivery_rate == round(90 / 100, 6)
    assert rates.unique_open_rate == round(30 / 90, 6)
    assert rates.unique_open_rate_with_machine == round(36 / 90, 6)
    assert rates.click_rate == round(9 / 90, 6)
    assert rates.click_to_open_rate == round(9 / 30, 6)
    assert rates.bounce_rate == round(6 / 96, 6)
    assert rates.hard_bounce_rate == round(3 / 96, 6)
    assert rates.soft_bounce_rate == round(2 / 96, 6)
    assert rates.complaint_rate == round(1 / 90, 6)
    assert rates.unsubscribe_rate == round(2 / 90, 6)
    details = compute_details(counts)
    assert (details.hard_bounces, details.soft_bounces, details.undetermined_bounces) == (3, 2, 1)
    assert (details.unique_opens, details.unique_human_opens, details.unique_clicks) == (36, 30, 9)
    assert details.machine_opens == 8


def test_rates_are_null_without_a_denominator() -> None:
    """No deliveries, bounces or opens: every rate is null rather than a division error."""
    rates = compute_rates({"clicked": 3})
    assert all(
        value is None
        for value in (
            rates.delivery_rate,
            rates.unique_open_rate,
            rates.click_rate,
            rates.click_to_open_rate,
            rates.hard_bounce_rate,
            rates.complaint_rate,
        )
    )


def test_a_held_then_released_postal_message_ends_delivered() -> None:
    """Judgment call: Postal's MessageHeld is deferred (it may be released), so a release
    followed by MessageSent shows delivered; as 'dropped' it outranked the delivery."""
    assert furthest_status(["deferred", "delivered"]) == "delivered"
    assert furthest_status(["dropped", "delivered"]) == "dropped"


def test_an_auto_reply_is_below_every_failure_and_above_delivered() -> None:
    """An auto-reply proves the mailbox answered (above delivered) and is no bounce."""
    assert furthest_status(["delivered", "auto_replied"]) == "auto_replied"
    assert furthest_status(["auto_replied", "bounced"]) == "bounced"
