"""Gateway-side figures of a load step, from /metrics expositions."""

from __future__ import annotations

from loadtests.gateway_figures import during, parse_sample, summarize


def exposition(
    cpu: float, flush_sum: float, flushes: int, events: int, spool: int, breaker: int
) -> str:
    return f"""# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total {cpu}
# TYPE hookline_storage_flush_duration_seconds histogram
hookline_storage_flush_duration_seconds_bucket{{le="+Inf"}} {flushes}
hookline_storage_flush_duration_seconds_sum {flush_sum}
hookline_storage_flush_duration_seconds_count {flushes}
# TYPE hookline_storage_batch_size histogram
hookline_storage_batch_size_bucket{{le="+Inf"}} {flushes}
hookline_storage_batch_size_sum {events}
hookline_storage_batch_size_count {flushes}
# TYPE hookline_spool_events gauge
hookline_spool_events {spool}
# TYPE hookline_ingest_queue_events gauge
hookline_ingest_queue_events 3
# TYPE hookline_circuit_breaker_state gauge
hookline_circuit_breaker_state{{breaker="a"}} 0
hookline_circuit_breaker_state{{breaker="b"}} {breaker}
# TYPE hookline_storage_connected gauge
hookline_storage_connected 1
"""


def test_a_steps_figures_are_rates_and_means_over_the_step_and_worst_states() -> None:
    """Over 10 s: 5 CPU seconds is half a core; 100 flushes taking 2 s in all average 20 ms
    and carry 4,000 events (40 per flush); the deepest spool and the worst breaker seen at
    any sample are reported, not the last ones."""
    samples = [
        parse_sample(exposition(10.0, 1.0, 50, 1000, 0, 0), at=100.0),
        parse_sample(exposition(12.0, 2.0, 100, 3000, 70, 2), at=105.0),
        parse_sample(exposition(15.0, 3.0, 150, 5000, 0, 0), at=110.0),
    ]
    figures = summarize(samples)
    assert figures.cpu_cores == 0.5
    assert round(figures.flush_mean_ms, 6) == 20.0
    assert figures.flushes_per_second == 10.0
    assert figures.batch_mean_events == 40.0
    assert figures.spool_max_events == 70
    assert figures.queue_max_events == 3
    assert figures.breaker_worst == "open"
    assert not figures.storage_disconnected


def test_only_the_samples_taken_under_load_bound_the_figures() -> None:
    """Idle seconds before Locust's users start and after they stop are left out, keeping
    the samples that bracket the load; with too few samples in the window, all are kept."""
    samples = [parse_sample(exposition(float(t), 0, 0, 0, 0, 0), at=float(t)) for t in range(10)]
    assert [s.at for s in during(samples, 3.5, 6.0)] == [3.0, 4.0, 5.0, 6.0]
    assert [s.at for s in during(samples, 3.0, 3.0)] == [float(t) for t in range(10)]
