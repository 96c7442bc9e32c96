"""The normalization decision table (handlers.decisions) and docs/providers.md."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.delivery.outbox import SUPPRESSION_EVENT_TYPES
from gateway.delivery.payload import SuppressionSignal
from gateway.delivery.processors.suppressions import plan_suppressions
from handlers import decisions
from handlers.base import ControlKind
from handlers.events import EventType
from handlers.registry import PROVIDERS

DOC = Path(__file__).resolve().parents[2] / "docs" / "providers.md"


def test_docs_providers_md_is_the_rendered_table() -> None:
    """docs/providers.md is exactly what ``python -m handlers.decisions`` renders: change
    an adapter's mapping or a reason and this fails until the doc is regenerated."""
    assert DOC.read_text() == decisions.render(), (
        "docs/providers.md is stale: python -m handlers.decisions > docs/providers.md"
    )


def test_every_provider_has_rows_and_every_row_a_valid_outcome_reason_and_link() -> None:
    """Ten providers, each with rows; outcomes are EventTypes or ControlKinds; every row
    says why and links to documentation."""
    assert {d.provider for d in decisions.DECISIONS} == set(PROVIDERS)
    kinds = {f"control:{k.value}" for k in ControlKind}
    for d in decisions.DECISIONS:
        assert d.normalized in {t.value for t in EventType} | kinds, d
        assert d.reason and d.doc.startswith("https://"), d
    keys = [(d.provider, d.esp_event, d.subtype) for d in decisions.DECISIONS]
    assert len(keys) == len(set(keys)), "one row per event and subtype"


@pytest.mark.parametrize(
    "decision",
    [d for d in decisions.DECISIONS if not d.normalized.startswith("control:")],
    ids=lambda d: f"{d.provider}-{d.esp_event}-{d.subtype}",
)
def test_the_suppression_column_is_what_the_suppression_processor_does(
    decision: decisions.Decision,
) -> None:
    """Each row's suppression column matches the gateway: whether the outbox hands the
    event to the suppression processor, and what that processor plans for it."""
    at = datetime(2024, 5, 1, tzinfo=UTC)
    signal = SuppressionSignal(
        dedup_key="k",
        provider=decision.provider,
        event_type=decision.normalized,
        recipient="a@example.org",
        occurred_at=at,
        bounce_class=decision.bounce_class.value if decision.bounce_class else None,
    )
    reaches = EventType(decision.normalized) in SUPPRESSION_EVENT_TYPES
    plan = plan_suppressions([signal]) if reaches else None
    effect = "no"
    if plan is not None and plan.listings:
        effect = "suppresses"
    elif plan is not None and plan.soft_bounces:
        effect = "quarantine count"
    elif plan is not None and plan.lifts:
        effect = "lifts unsubscribe"
    assert decision.suppression == effect


def test_auto_replies_and_non_tracking_messages_never_suppress() -> None:
    """No auto-reply, inbound or setup message row can suppress or quarantine anything."""
    quiet = [
        d
        for d in decisions.DECISIONS
        if d.normalized in ("auto_replied", "unknown") or d.normalized.startswith("control:")
    ]
    assert quiet and {d.suppression for d in quiet} == {"no"}
