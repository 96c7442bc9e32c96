"""The soak's bounds (loadtests.soak.judge): RSS growth measured from the level just after
the warm-up, queues judged by their deepest sample, and a scrape parsed into a sample."""

from __future__ import annotations

from loadtests.soak import SoakBounds, SoakSample, judge, parse_soak_sample, rss_by_minute

MB = 2**20


def _samples(rss_mb: list[float], every: float = 5.0, **queues: float) -> list[SoakSample]:
    values = {
        "queue_events": 0.0,
        "spool_events": 0.0,
        "rollup_pending_rows": 0.0,
        "outbox_lag_seconds": 0.0,
    } | queues
    return [SoakSample(at=i * every, rss_bytes=r * MB, **values) for i, r in enumerate(rss_mb)]


def test_growth_during_the_warm_up_does_not_count() -> None:
    """RSS that climbs during the warm-up and then stays flat is within bounds."""
    samples = _samples([40, 60, 80, 100, 100, 101, 100, 102, 101])
    verdict = judge(samples, warmup_seconds=15, bounds=SoakBounds())
    assert verdict.ok, verdict.problems
    assert verdict.rss_baseline_mb == 100.5  # median of the samples after the warm-up
    assert round(verdict.rss_growth, 4) == round(102 / 100.5 - 1, 4)


def test_growth_after_the_warm_up_beyond_the_bound_fails() -> None:
    """RSS creeping from 100 to 112 MB after the warm-up (+12%) breaks the +10% bound, even
    when the last sample is lower again: the highest sample counts."""
    samples = _samples([100] * 12 + [104, 108, 112, 109], every=10)
    verdict = judge(samples, warmup_seconds=0, bounds=SoakBounds())
    assert not verdict.ok
    assert verdict.rss_max_mb == 112
    assert any("RSS grew +12.0%" in p for p in verdict.problems), verdict.problems


def test_the_baseline_is_the_first_minute_after_the_warm_up() -> None:
    """Samples a minute or more past the warm-up do not move the baseline up."""
    samples = _samples([100] * 7 + [109] * 20, every=10)
    verdict = judge(samples, warmup_seconds=0, bounds=SoakBounds())
    assert verdict.rss_baseline_mb == 100
    assert verdict.ok  # +9%


def test_each_queue_is_judged_by_its_deepest_sample() -> None:
    """A spooled event (PostgreSQL was up) or a rollup backlog over its ceiling is reported,
    each in its own problem; a queue within bounds is not."""
    samples = _samples([100] * 5)
    deep = SoakSample(
        at=25, rss_bytes=100 * MB, queue_events=10, spool_events=3,
        rollup_pending_rows=200_000, outbox_lag_seconds=1,
    )  # fmt: skip
    verdict = judge([*samples, deep], warmup_seconds=0, bounds=SoakBounds())
    assert verdict.max_spool_events == 3 and verdict.max_queue_events == 10
    assert sorted(p.split()[0] for p in verdict.problems) == [
        "rollup_pending_rows",
        "spool_events",
    ]


def test_no_sample_after_the_warm_up_is_a_failure() -> None:
    """A soak shorter than its warm-up proves nothing about memory and does not pass."""
    verdict = judge(_samples([100, 100]), warmup_seconds=60, bounds=SoakBounds())
    assert not verdict.ok
    assert not judge([], warmup_seconds=0, bounds=SoakBounds()).ok


def test_a_scrape_becomes_a_sample() -> None:
    """The gauges are read from the exposition; labelled series are summed."""
    text = (
        "process_resident_memory_bytes 1.048576e+08\n"
        "hookline_ingest_queue_events 12.0\n"
        "hookline_spool_events 0.0\n"
        "hookline_rollup_pending_rows 7.0\n"
        "hookline_outbox_lag_seconds 0.5\n"
    )
    sample = parse_soak_sample(text, at=3.0)
    assert sample == SoakSample(3.0, 100 * MB, 12.0, 0.0, 7.0, 0.5)


def test_rss_per_minute_is_each_minutes_highest_sample() -> None:
    """The curve printed with the verdict: one figure per minute, its highest RSS."""
    samples = _samples([90, 95, 92, 91, 93, 94] + [100] * 6 + [101, 99], every=10)
    assert rss_by_minute(samples) == [95, 100, 101]
    assert rss_by_minute([]) == []
