"""observe_many must leave a histogram exactly as one observe() per value would."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

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


def test_the_event_delay_histogram_has_the_internals_it_relies_on() -> None:
    """The shipped histogram (pinned prometheus-client) exposes the bucket list used."""
    child = Metrics().event_delay.labels("sendgrid")
    observe_many(child, [1.0, 2.0])
    assert len(child._buckets) == len(child._upper_bounds)
    assert child._sum.get() == 3.0
