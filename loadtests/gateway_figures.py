"""Gateway-side figures of a load step, from its ``/metrics`` scraped during the step.

``Sample`` is one scrape reduced to what says where the limit is: CPU seconds, the
group-commit flush (duration and batch size histograms' sums and counts), spool and
in-process queue depth, the worst circuit-breaker state and whether PostgreSQL answers.
``summarize`` turns the samples of one step into its figures: CPU used (cores), mean flush
duration and batch size over the step, the deepest spool and queue seen, the worst breaker.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["BREAKER_STATES", "GatewayFigures", "Sample", "during", "parse_sample", "summarize"]

#: hookline_circuit_breaker_state values
BREAKER_STATES = {0: "closed", 1: "half-open", 2: "open"}


@dataclass(frozen=True)
class Sample:
    #: Unix time of the scrape (comparable with Locust's history timestamps)
    at: float
    cpu_seconds: float
    flush_seconds_sum: float
    flush_count: float
    batch_events_sum: float
    batch_count: float
    spool_events: float
    queue_events: float
    breaker_state: float
    storage_connected: float


def parse_sample(exposition: str, at: float | None = None) -> Sample:
    """One scrape of the gateway's Prometheus text exposition."""
    values: dict[str, float] = {}
    breaker = 0.0
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "hookline_circuit_breaker_state":
                breaker = max(breaker, sample.value)
            elif not sample.labels or sample.name.endswith(("_sum", "_count")):
                values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return Sample(
        at=time.time() if at is None else at,
        cpu_seconds=values.get("process_cpu_seconds_total", math.nan),
        flush_seconds_sum=values.get("hookline_storage_flush_duration_seconds_sum", 0.0),
        flush_count=values.get("hookline_storage_flush_duration_seconds_count", 0.0),
        batch_events_sum=values.get("hookline_storage_batch_size_sum", 0.0),
        batch_count=values.get("hookline_storage_batch_size_count", 0.0),
        spool_events=values.get("hookline_spool_events", 0.0),
        queue_events=values.get("hookline_ingest_queue_events", 0.0),
        breaker_state=breaker,
        storage_connected=values.get("hookline_storage_connected", math.nan),
    )


@dataclass(frozen=True)
class GatewayFigures:
    """What the gateway did during one step (NaN where the samples cannot say)."""

    #: CPU seconds per wall second (1.0 = one core busy)
    cpu_cores: float
    flush_mean_ms: float
    flushes_per_second: float
    batch_mean_events: float
    spool_max_events: float
    queue_max_events: float
    breaker_worst: str
    storage_disconnected: bool


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.nan


def during(samples: Sequence[Sample], start: float, end: float) -> list[Sample]:
    """The samples from the last one at or before ``start`` to the first at or after ``end``:
    the window the load was applied in (Locust's start-up and shutdown left out), or every
    sample when fewer than two fall in it."""
    first = max((i for i, s in enumerate(samples) if s.at <= start), default=0)
    last = min((i for i, s in enumerate(samples) if s.at >= end), default=len(samples) - 1)
    window = list(samples[first : last + 1])
    return window if len(window) >= 2 else list(samples)


def summarize(samples: Sequence[Sample]) -> GatewayFigures:
    """The figures of one step from its samples (first and last bound the step)."""
    if len(samples) < 2:
        nan = math.nan
        return GatewayFigures(nan, nan, nan, nan, nan, nan, "unknown", False)
    first, last = samples[0], samples[-1]
    elapsed = last.at - first.at
    flushes = last.flush_count - first.flush_count
    return GatewayFigures(
        cpu_cores=_ratio(last.cpu_seconds - first.cpu_seconds, elapsed),
        flush_mean_ms=_ratio(last.flush_seconds_sum - first.flush_seconds_sum, flushes) * 1000,
        flushes_per_second=_ratio(flushes, elapsed),
        batch_mean_events=_ratio(
            last.batch_events_sum - first.batch_events_sum, last.batch_count - first.batch_count
        ),
        spool_max_events=max(s.spool_events for s in samples),
        queue_max_events=max(s.queue_events for s in samples),
        breaker_worst=BREAKER_STATES.get(int(max(s.breaker_state for s in samples)), "unknown"),
        storage_disconnected=any(s.storage_connected == 0 for s in samples),
    )
