"""The capacity run's report: ``report.md`` plus the raw CSVs beside it, in the run's directory.

``render_markdown`` is pure (records in, text out); ``write_report`` writes ``report.md``,
``steps.csv`` (one row per step), ``providers.csv`` (one row per step and provider) and
``generator.csv`` (CPU share of each Locust process per step), ``workers.csv`` (each Locust
worker's requests and the CPU it reported to the master, this machine's and remote ones),
``capacity.svg``
(throughput and p99 by step, the knee ringed) and ``timeline.svg`` (throughput and latency
over time, from Locust's history CSVs). Locust's own per-step CSVs
(``locust/stepN_stats.csv``, ``..._stats_history.csv`` for throughput and latency over time)
and the logs are written there by the run itself.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from loadtests.chart import read_history, svg_chart, svg_timeline
from loadtests.gateway_figures import GatewayFigures
from loadtests.stats import RequestStats
from loadtests.truth import StepTruth
from loadtests.verdict import (
    GENERATOR_CPU_THRESHOLD,
    Objective,
    StepMeasure,
    find_knee,
    gateway_saturated,
)
from loadtests.worker_figures import WorkerFigures

__all__ = ["Hpa", "RunInfo", "StepRecord", "hpa_for", "render_markdown", "write_report"]

#: share of the knee a replica should run at before the HPA adds one (time to start a pod)
DEFAULT_HEADROOM = 0.6
#: a pinned gateway using less than this share of its cores at the knee was not the limit
PINNED_BUSY_SHARE = 0.8


@dataclass(frozen=True)
class StepRecord:
    """Everything measured in one step."""

    index: int
    users: int
    seconds: float
    total: RequestStats
    measure: StepMeasure
    generator_cpu: dict[str, float]
    locust_warnings: int
    gateway: GatewayFigures
    truth: StepTruth
    #: every Locust worker as its master saw it (none for a single Locust process)
    workers: tuple[WorkerFigures, ...] = ()

    @property
    def events_per_second(self) -> float:
        return self.truth.stored / self.seconds if self.seconds > 0 else math.nan


@dataclass(frozen=True)
class RunInfo:
    started: str
    machine: str
    profile: str
    traffic: str
    objective: Objective
    processes: int
    step_seconds: int
    postgres: str
    replica_cpu: float = 1.0
    headroom: float = DEFAULT_HEADROOM
    cpu_threshold: float = GENERATOR_CPU_THRESHOLD
    notes: list[str] = field(default_factory=list)
    #: CPUs the gateway was pinned to (``--gateway-cpus``), None when not pinned
    gateway_cpus: int | None = None
    #: Locust workers on other machines (``--expect-remote-workers``)
    remote_workers: int = 0


@dataclass(frozen=True)
class Hpa:
    """The chart's autoscaling values implied by the knee (``helm/hookline`` ``autoscaling``)."""

    requests_per_second: float
    cpu_cores: float
    target_average_requests: int
    target_cpu_percent: int | None


def hpa_for(knee: StepRecord, replica_cpu: float, headroom: float) -> Hpa:
    """One gateway process is one replica: scale out at ``headroom`` of its knee, by request
    rate (``requestRate.targetAverageValue``) and by CPU (percent of the pod's CPU request)."""
    rps = knee.measure.throughput
    cpu = knee.gateway.cpu_cores
    target_cpu = None
    if not math.isnan(cpu) and replica_cpu > 0:
        target_cpu = max(1, round(100 * headroom * cpu / replica_cpu))
    return Hpa(rps, cpu, max(1, math.floor(rps * headroom)), target_cpu)


def _num(value: float, digits: int = 0) -> str:
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def _processes(count: int, remote: int = 0) -> str:
    if remote:
        return f"a master, {count} worker process(es) on this machine and {remote} remote"
    return "one process" if count == 1 else f"a master and {count} worker processes"


def _verdict(records: Sequence[StepRecord], objective: Objective) -> tuple[str, str | None]:
    """(the run's conclusion, why the knee is only a lower bound or None)."""
    measures = [r.measure for r in records]
    invalid = [r for r in records if not r.measure.valid]
    if invalid:
        first = invalid[0]
        return (
            f"the load generator saturated at step {first.index} ({first.users} users): "
            f"{first.measure.generator_saturated}",
            "the generator, not the gateway, stopped the search: give Locust more processes "
            "(--processes) or machines and run again",
        )
    if gateway_saturated(measures, objective):
        return (
            "the gateway saturated: more users gave no more throughput within the objective",
            None,
        )
    return (
        "the gateway kept up with every step",
        "the search ended before the gateway saturated (raise --max-users or --max-steps)",
    )


def _idle_pinned_gateway(info: RunInfo, knee: StepRecord) -> str | None:
    """Why a knee measured with the gateway pinned is not one replica's limit: the gateway
    had CPU to spare, so PostgreSQL, the disk or the generator's cores stopped it."""
    cores = knee.gateway.cpu_cores
    if info.gateway_cpus is None or math.isnan(cores):
        return None
    if cores >= PINNED_BUSY_SHARE * info.gateway_cpus:
        return None
    return (
        f"the gateway used {cores:.2f} of its {info.gateway_cpus} pinned core(s) at the "
        "knee, so something else (PostgreSQL, the disk, or the generator's cores) was the "
        "limit, not one replica"
    )


def render_markdown(info: RunInfo, records: Sequence[StepRecord]) -> str:
    objective = info.objective
    knee_measure = find_knee([r.measure for r in records], objective)
    knee = next((r for r in records if r.measure is knee_measure), None)
    conclusion, caveat = _verdict(records, objective)
    if caveat is None and knee is not None:
        caveat = _idle_pinned_gateway(info, knee)
    lines = [
        f"# Hookline capacity run {info.started}",
        "",
        f"- Machine: {info.machine}",
        f"- Traffic: {info.traffic} (profile `{info.profile}`)",
        f"- Objective: {objective.describe()} (from grafana/slo/slos.yml unless overridden)",
        f"- Load generator: Locust, {_processes(info.processes, info.remote_workers)}; "
        f"{info.step_seconds} s per step; a step where any Locust process used "
        f"{info.cpu_threshold:.0%} or more of a core, or Locust warned about its CPU, is "
        "**invalid** and never counted as the gateway's capacity",
        f"- PostgreSQL: {info.postgres}",
        *[f"- {note}" for note in info.notes],
        "",
        "## Verdict",
        "",
    ]
    all_stored = all(r.truth.ok for r in records)
    truth_line = (
        "every acknowledged event was found in PostgreSQL"
        if all_stored
        else "**FAILED: acknowledged events are missing or unexplained (see Truth check)**"
    )
    if knee is None:
        lines.append("**No knee**: no valid step met the objective.")
    else:
        lines.append(
            f"**Knee: {_num(knee.measure.throughput)} requests/s "
            f"({_num(knee.events_per_second)} events/s) at {knee.users} users**, "
            f"p99 {_num(knee.total.p99_ms)} ms, errors {knee.measure.error_ratio:.3%} "
            f"(step {knee.index})."
        )
    lines += ["", f"- Conclusion: {conclusion}."]
    if caveat:
        lines.append(f"- Only a lower bound: {caveat}.")
    lines.append(f"- Truth check: {truth_line}.")
    if knee is not None:
        hpa = hpa_for(knee, info.replica_cpu, info.headroom)
        cpu_target = "-" if hpa.target_cpu_percent is None else str(hpa.target_cpu_percent)
        lines += [
            "",
            "## Per replica and autoscaling",
            "",
            f"One gateway process (one replica) handles **{_num(hpa.requests_per_second)} "
            f"requests/s** at the knee, using {_num(hpa.cpu_cores, 2)} cores. Scaling out at "
            f"{info.headroom:.0%} of that, with a {info.replica_cpu:g}-CPU request per pod, "
            "the chart's values would be"
            + (" (conservative: the knee is only a lower bound):" if caveat else ":"),
            "",
            "```yaml",
            "autoscaling:",
            f"  targetCPUUtilizationPercentage: {cpu_target}",
            "  requestRate:",
            f'    targetAverageValue: "{hpa.target_average_requests}"',
            "```",
        ]
    lines += [
        "",
        "## Steps",
        "",
        "![Throughput and p99 latency by step; the knee ringed, hollow dots are steps where "
        "the generator saturated](capacity.svg)",
        "",
        "![Throughput, p50 and p99 over time, one band per step](timeline.svg)",
        "",
        "| step | users | valid | req/s | events/s | p50 ms | p95 ms | p99 ms | errors | "
        "objective | gateway CPU | flush ms | batch | spool max | queue max | breakers "
        "| truth |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in records:
        g = r.gateway
        marker = " **knee**" if r is knee else ""
        valid = "yes" if r.measure.valid else "**no: generator saturated**"
        lines.append(
            f"| {r.index}{marker} | {r.users} | {valid} | {_num(r.measure.throughput, 1)} | "
            f"{_num(r.events_per_second, 1)} | {_num(r.total.p50_ms)} | {_num(r.total.p95_ms)} | "
            f"{_num(r.total.p99_ms)} | {r.total.failures} ({r.measure.error_ratio:.2%}) | "
            f"{'met' if r.measure.meets(objective) else 'missed'} | {_num(g.cpu_cores, 2)} | "
            f"{_num(g.flush_mean_ms, 1)} | {_num(g.batch_mean_events, 1)} | "
            f"{_num(g.spool_max_events)} | {_num(g.queue_max_events)} | {g.breaker_worst}"
            f"{' (PostgreSQL lost)' if g.storage_disconnected else ''} | "
            f"{'ok' if r.truth.ok else 'FAILED'} |"
        )
    lines += [
        "",
        "## Load generator CPU (share of one core, average over the step)",
        "",
        "| step | processes | Locust CPU warnings |",
        "|---:|---|---:|",
    ]
    for r in records:
        shares = ", ".join(f"{name} {share:.0%}" for name, share in sorted(r.generator_cpu.items()))
        lines.append(f"| {r.index} | {shares or '(not measured)'} | {r.locust_warnings} |")
    lines += _workers_section(records)
    lines += [
        "",
        "## Truth check per provider",
        "",
        "Fresh requests acknowledged x events per request must all be stored; rows beyond "
        "every event sent fresh, or forged requests that were not refused, fail the run. "
        "Duplicates (redeliveries) add no rows.",
        "",
        "| step | provider | acknowledged events | stored | missing | unexplained | "
        "fresh failed | duplicates | forged (not refused) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        for p in r.truth.providers:
            lines.append(
                f"| {r.index} | {p.provider} | {p.acknowledged_events} | {p.stored} | "
                f"{p.missing} | {p.unexplained} | {p.fresh_failed} | {p.duplicates} | "
                f"{p.forged} ({p.forged_not_refused}) |"
            )
    problems = [f"step {r.index}: {line}" for r in records for line in r.truth.problems()]
    if problems:
        lines += ["", "Problems:", "", *[f"- {line}" for line in problems]]
    lines += [
        "",
        "## Files",
        "",
        "- `capacity.svg`, `timeline.svg`: the charts above",
        "- `steps.csv`, `providers.csv`, `generator.csv`, `workers.csv`: the tables above",
        "- `locust/stepN_stats.csv`, `locust/stepN_stats_history.csv`: Locust's statistics "
        "per step (the history is throughput and latency percentiles over time)",
        "- `gateway_samples.csv`: the gateway's /metrics figures, sampled every second",
        "- `logs/`: the gateway's and Locust's logs",
        "",
    ]
    return "\n".join(lines)


def _workers_section(records: Sequence[StepRecord]) -> list[str]:
    """Each Locust worker per step as its master saw it; nothing when no step had workers."""
    if not any(r.workers for r in records):
        return []
    lines = [
        "",
        "## Locust workers (as reported to the master)",
        "",
        "Requests each worker sent, and the share of one core it used from the start of its "
        "users to its last report (each worker measures itself and reports through Locust). "
        "Remote workers cannot be watched through this machine's /proc: their figure here is "
        "the one the generator check uses (as `remote worker N` above), beside Locust's own "
        "warnings when a worker passes 90 %. Locust's peak is its own `cpu_usage` figure, "
        "sampled every 10 s (none for a worker's first 20 s).",
        "",
        "| step | worker | host | pid | where | requests | CPU (share of a core) | over s "
        "| Locust's peak |",
        "|---:|---:|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in records:
        for w in r.workers:
            share = "-" if math.isnan(w.cpu_share) else f"{w.cpu_share:.0%}"
            peak = "-" if math.isnan(w.locust_cpu_peak) else f"{w.locust_cpu_peak:.0%}"
            lines.append(
                f"| {r.index} | {w.index + 1} | {w.host} | {w.pid} | "
                f"{'remote' if w.remote else 'this machine'} | {w.requests} | {share} | "
                f"{w.cpu_over_seconds:.0f} | {peak} |"
            )
    return lines


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_report(directory: Path, info: RunInfo, records: Sequence[StepRecord]) -> Path:
    """``report.md`` and its CSVs in ``directory``; returns the report's path."""
    knee = find_knee([r.measure for r in records], info.objective)
    _write_csv(
        directory / "steps.csv",
        (
            "step",
            "users",
            "seconds",
            "valid",
            "generator_saturated",
            "requests",
            "requests_per_second",
            "events_per_second",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "failures",
            "error_ratio",
            "meets_objective",
            "knee",
            "gateway_cpu_cores",
            "flush_mean_ms",
            "flushes_per_second",
            "batch_mean_events",
            "spool_max_events",
            "queue_max_events",
            "breaker_worst",
            "storage_disconnected",
            "truth_ok",
            "events_acknowledged",
            "events_stored",
            "events_missing",
        ),
        [
            (
                r.index,
                r.users,
                r.seconds,
                r.measure.valid,
                r.measure.generator_saturated or "",
                r.total.requests,
                r.measure.throughput,
                r.events_per_second,
                r.total.p50_ms,
                r.total.p95_ms,
                r.total.p99_ms,
                r.total.failures,
                r.measure.error_ratio,
                r.measure.meets(info.objective),
                r.measure is knee,
                r.gateway.cpu_cores,
                r.gateway.flush_mean_ms,
                r.gateway.flushes_per_second,
                r.gateway.batch_mean_events,
                r.gateway.spool_max_events,
                r.gateway.queue_max_events,
                r.gateway.breaker_worst,
                r.gateway.storage_disconnected,
                r.truth.ok,
                r.truth.acknowledged_events,
                r.truth.stored,
                r.truth.missing,
            )
            for r in records
        ],
    )
    _write_csv(
        directory / "providers.csv",
        (
            "step",
            "provider",
            "events_per_request",
            "fresh_acknowledged",
            "fresh_failed",
            "events_acknowledged",
            "events_sent",
            "events_stored",
            "events_missing",
            "events_unexplained",
            "duplicates",
            "duplicates_failed",
            "forged",
            "forged_not_refused",
        ),
        [
            (
                r.index,
                p.provider,
                p.events_per_request,
                p.fresh_acknowledged,
                p.fresh_failed,
                p.acknowledged_events,
                p.sent_events,
                p.stored,
                p.missing,
                p.unexplained,
                p.duplicates,
                p.duplicates_failed,
                p.forged,
                p.forged_not_refused,
            )
            for r in records
            for p in r.truth.providers
        ],
    )
    _write_csv(
        directory / "generator.csv",
        ("step", "process", "cpu_share_of_one_core", "locust_cpu_warnings"),
        [
            (r.index, name, share, r.locust_warnings)
            for r in records
            for name, share in sorted(r.generator_cpu.items())
        ],
    )
    _write_csv(
        directory / "workers.csv",
        (
            "step",
            "worker",
            "host",
            "pid",
            "remote",
            "requests",
            "cpu_share_of_one_core",
            "cpu_over_seconds",
            "locust_cpu_peak_share_of_one_core",
        ),
        [
            (
                r.index,
                w.index + 1,
                w.host,
                w.pid,
                w.remote,
                w.requests,
                w.cpu_share,
                w.cpu_over_seconds,
                w.locust_cpu_peak,
            )
            for r in records
            for w in r.workers
        ],
    )
    (directory / "capacity.svg").write_text(svg_chart([r.measure for r in records], info.objective))
    histories = [
        read_history(history) if history.exists() else []
        for history in (directory / "locust" / f"step{r.index}_stats_history.csv" for r in records)
    ]
    (directory / "timeline.svg").write_text(svg_timeline(histories, info.objective))
    path = directory / "report.md"
    path.write_text(render_markdown(info, records))
    return path
