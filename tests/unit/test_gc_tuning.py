"""The gateway's garbage-collector settings (observability/gc_tuning.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from handlers.base import WebhookRequest
from handlers.sendgrid import ADAPTER
from hookline_testing import samples_for
from observability.gc_tuning import GEN0_THRESHOLD, tune_garbage_collector


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_tuning_freezes_start_up_objects_and_raises_the_young_threshold(
    restore_gc: None,
) -> None:
    """After tuning, what existed is in the permanent generation and generation 0 waits
    for GEN0_THRESHOLD allocations; the older generations keep their ratios."""
    _, gen1, gen2 = gc.get_threshold()
    tune_garbage_collector()
    assert gc.get_freeze_count() > 1000
    assert gc.get_threshold() == (GEN0_THRESHOLD, gen1, gen2)


def test_events_are_not_tracked_by_the_cycle_collector() -> None:
    """EmailEvent is gc=False: a parsed batch adds no event objects to young collections."""
    source, _ = samples_for("sendgrid").make_source()
    request = WebhookRequest("POST", "", {}, samples_for("sendgrid").example_body(10, seed=3))
    events = ADAPTER.parse(request, source, datetime.now(UTC)).events
    assert len(events) == 10
    assert not any(gc.is_tracked(event) for event in events)
