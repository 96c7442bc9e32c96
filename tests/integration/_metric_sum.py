"""Read a metric the way a dashboard does: the sum over every label the caller did not name.

Adding a label to a metric (e.g. ``source``) then changes no assertion that does not care
about it; ``get_sample_value`` alone would need every label and return None otherwise."""

from __future__ import annotations

from prometheus_client import CollectorRegistry


def metric_sum(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """The sum of every sample called ``name`` whose labels include ``labels`` (0.0 if none)."""
    wanted = labels.items()
    return float(
        sum(
            sample.value
            for family in registry.collect()
            for sample in family.samples
            if sample.name == name and wanted <= sample.labels.items()
        )
    )
