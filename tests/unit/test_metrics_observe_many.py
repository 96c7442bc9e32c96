"""observe_many must leave a histogram exactly as one observe() per value would."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from observability._prom_compat import has_fast_path
from observability.metrics import Metrics, observe_many

BOUNDS = (0.5, 1.0, 5.0, 60.0)


def exposition(values: list[float], batched: bool) -> bytes:
    registry = CollectorRegistry()
    histogram = Histogram("delay_seconds", "d", ["provider"], buckets=BOUNDS, registry=registry)
    child = histogram.labels("sendgrid")
    if batched:
        observe_many(child, values)
    else:
        for value in values:
            child.observe(value)
    return b"\n".join(
        line for line in generate_latest(registry).splitlines() if b"_created" not in line
    )


def test_values_on_the_bounds_land_in_the_same_buckets() -> None:
    """A value equal to a bucket's upper bound counts in that bucket (le is inclusive)."""
    values = [0.0, 0.5, 0.5000001, 1.0, 5.0, 60.0, 61.0, 1e9]
    assert exposition(values, batched=True) == exposition(values, batched=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e7, allow_nan=False), max_size=50))
def test_any_batch_matches_one_observe_per_value(values: list[float]) -> None:
    """Counts, buckets and sum match for any batch of non-negative delays."""
    assert exposition(values, batched=True) == exposition(values, batched=False)


def test_the_pinned_prometheus_client_has_the_fast_path() -> None:
    """The shipped histograms (pinned prometheus-client) still have the internals the batch
    path adds through (observability/_prom_compat.py): an upgrade that removes them fails
    here instead of silently falling back to one observe per value."""
    child = Metrics().event_delay.labels("sendgrid")
    assert has_fast_path(child)
    observe_many(child, [1.0, 2.0])
    assert child.collect()[0].samples  # and the child still collects


class _PublicOnly:
    """A histogram child as another prometheus-client might shape it: ``observe`` only."""

    def __init__(self, child: Any) -> None:
        self.child = child

    def observe(self, value: float) -> None:
        self.child.observe(value)


def test_without_the_internals_every_value_is_observed_one_by_one() -> None:
    """The fallback (no bucket list to add to) leaves the histogram as observe() would."""
    values = [0.1, 0.5, 3.0, 100.0]
    registry = CollectorRegistry()
    histogram = Histogram("delay_seconds", "d", ["provider"], buckets=BOUNDS, registry=registry)
    wrapper: Any = _PublicOnly(histogram.labels("sendgrid"))
    assert not has_fast_path(wrapper)
    observe_many(wrapper, values)
    batched = b"\n".join(
        line for line in generate_latest(registry).splitlines() if b"_created" not in line
    )
    assert batched == exposition(values, batched=False)
