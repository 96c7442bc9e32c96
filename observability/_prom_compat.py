"""The one place Hookline reaches into prometheus-client's internals.

prometheus-client has no batch API for histograms. A 100-event batch observes 100 event
delays; one ``observe`` each (a bucket scan and a lock per value) was a noticeable share of
the gateway's CPU on such batches. ``observe_many`` adds a whole batch per bucket through
the histogram's own bucket list (non-cumulative, as ``observe`` keeps it) and sum.

Where those internals are missing (another prometheus-client), it falls back to one public
``observe`` per value: slower, never wrong. tests/unit/test_metrics_observe_many.py fails
loudly when the pinned version has no fast path or when the fast path differs from
``observe``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

from prometheus_client import Histogram

__all__ = ["has_fast_path", "observe_many"]

#: the private attributes of a labelled ``Histogram`` child the fast path uses
_INTERNALS = ("_upper_bounds", "_buckets", "_sum")


def has_fast_path(histogram: Histogram) -> bool:
    """Whether ``observe_many`` can add to ``histogram`` per bucket (else per value)."""
    return all(hasattr(histogram, name) for name in _INTERNALS)


def observe_many(histogram: Histogram, values: Sequence[float]) -> None:
    """``histogram.observe(v)`` for every ``v`` (a labelled child), in one pass."""
    if not values:
        return
    if not has_fast_path(histogram):
        for value in values:
            histogram.observe(value)
        return
    internals: Any = histogram
    bounds = internals._upper_bounds
    buckets = internals._buckets
    counts: dict[int, int] = {}
    for value in values:
        index = bisect_left(bounds, value)
        counts[index] = counts.get(index, 0) + 1
    internals._sum.inc(sum(values))
    for index, count in counts.items():
        buckets[index].inc(count)
