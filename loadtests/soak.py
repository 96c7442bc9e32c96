"""Memory soak: the Locust mix against one gateway for minutes, its RSS and queues sampled.

    .venv/bin/python -m loadtests.soak                  # 10 minutes, the default profile
    .venv/bin/python -m loadtests.soak --seconds 60 --warmup 15 --interval 2

The same processes as ``loadtests.capacity`` (a durable embedded PostgreSQL, one
``hookline serve``, one headless Locust run with the profile's mix, the truth check of what
was acknowledged against what was stored) for one long step at a fixed number of users.
Every ``--interval`` seconds the gateway's ``/metrics`` is scraped for its resident memory
(``process_resident_memory_bytes``) and its queues: the batcher's in-process queue
(``hookline_ingest_queue_events``), the spool (``hookline_spool_events``), the rollup
tallies waiting for the compactor (``hookline_rollup_pending_rows``) and the outbox
(``hookline_outbox_lag_seconds``). ``judge`` holds the bounds: RSS at most ``--max-rss-growth``
above its level in the first minute after ``--warmup``, and every queue under its ceiling
for the whole soak. Exit 0 when the bounds hold and nothing acknowledged is missing, 2 when
not, 1 when the soak could not be run.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from gateway.settings import IngestSettings
from gateway.storage.embedded import EmbeddedPostgres
from loadtests.capacity import _locust_env, _Run, _run_step, default_processes
from loadtests.credentials import make_sources, write_run_files
from loadtests.harness import HOST, free_port, gateway_process, http_get, wait_ready
from loadtests.profile import DEFAULT_PROFILE, load_profile

__all__ = [
    "SoakBounds",
    "SoakSample",
    "SoakVerdict",
    "judge",
    "main",
    "parse_soak_sample",
    "rss_by_minute",
]

#: after the warm-up, the RSS baseline is the median of this many seconds of samples
BASELINE_SECONDS = 60.0


@dataclass(frozen=True)
class SoakSample:
    """One scrape of the gateway's /metrics, reduced to memory and queue depths."""

    at: float
    rss_bytes: float
    queue_events: float
    spool_events: float
    rollup_pending_rows: float
    outbox_lag_seconds: float


def parse_soak_sample(exposition: str, at: float) -> SoakSample:
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return SoakSample(
        at=at,
        rss_bytes=values.get("process_resident_memory_bytes", math.nan),
        queue_events=values.get("hookline_ingest_queue_events", 0.0),
        spool_events=values.get("hookline_spool_events", 0.0),
        rollup_pending_rows=values.get("hookline_rollup_pending_rows", 0.0),
        outbox_lag_seconds=values.get("hookline_outbox_lag_seconds", 0.0),
    )


@dataclass(frozen=True)
class SoakBounds:
    #: RSS may grow this much (0.10: +10%) over its level just after the warm-up
    max_rss_growth: float = 0.10
    #: the batcher's queue: its configured cap (beyond it the gateway answers 503)
    max_queue_events: float = float(IngestSettings().queue_max_events)
    #: the spool: PostgreSQL is up during the soak, so nothing should wait there
    max_spool_events: float = 0.0
    #: tallies the compactor has not folded yet (it folds every few seconds)
    max_rollup_pending_rows: float = 100_000.0
    #: the oldest due outbox entry (no sink in the load-test config: stays 0)
    max_outbox_lag_seconds: float = 60.0


@dataclass(frozen=True)
class SoakVerdict:
    rss_baseline_mb: float
    rss_last_mb: float
    rss_max_mb: float
    #: the highest RSS after the warm-up over the baseline, minus 1 (0.05: +5%)
    rss_growth: float
    max_queue_events: float
    max_spool_events: float
    max_rollup_pending_rows: float
    max_outbox_lag_seconds: float
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def judge(samples: Sequence[SoakSample], warmup_seconds: float, bounds: SoakBounds) -> SoakVerdict:
    """The soak's verdict from its samples (in time order): the RSS growth after the warm-up
    (the highest sample over the median of the first ``BASELINE_SECONDS`` after it) and the
    deepest queues of the whole soak, each against ``bounds``."""
    if not samples:
        nan = math.nan
        return SoakVerdict(nan, nan, nan, nan, nan, nan, nan, nan, ("no scrape of /metrics",))
    start = samples[0].at
    settled = [s for s in samples if s.at - start >= warmup_seconds and not math.isnan(s.rss_bytes)]
    problems: list[str] = []
    if settled:
        first = settled[0].at
        window = [s.rss_bytes for s in settled if s.at - first < BASELINE_SECONDS]
        baseline = statistics.median(window)
        highest = max(s.rss_bytes for s in settled)
        growth = highest / baseline - 1
        last = settled[-1].rss_bytes
    else:
        baseline = highest = last = growth = math.nan
        problems.append(f"no RSS sample after the {warmup_seconds:g} s warm-up")
    if growth > bounds.max_rss_growth:
        problems.append(
            f"RSS grew {growth:+.1%} after the warm-up "
            f"({baseline / 2**20:.0f} -> {highest / 2**20:.0f} MB; "
            f"bound {bounds.max_rss_growth:+.0%})"
        )
    deepest = {
        "queue_events": max(s.queue_events for s in samples),
        "spool_events": max(s.spool_events for s in samples),
        "rollup_pending_rows": max(s.rollup_pending_rows for s in samples),
        "outbox_lag_seconds": max(s.outbox_lag_seconds for s in samples),
    }
    for name, value in deepest.items():
        bound: float = getattr(bounds, f"max_{name}")
        if value > bound:
            problems.append(f"{name} reached {value:g} (bound {bound:g})")
    return SoakVerdict(
        rss_baseline_mb=baseline / 2**20,
        rss_last_mb=last / 2**20,
        rss_max_mb=highest / 2**20,
        rss_growth=growth,
        max_queue_events=deepest["queue_events"],
        max_spool_events=deepest["spool_events"],
        max_rollup_pending_rows=deepest["rollup_pending_rows"],
        max_outbox_lag_seconds=deepest["outbox_lag_seconds"],
        problems=tuple(problems),
    )


class SoakSampler:
    """Scrapes ``url``/metrics every ``interval`` seconds in a thread."""

    def __init__(self, url: str, interval: float) -> None:
        self.url = url
        self.interval = interval
        self.samples: list[SoakSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)

    def _take(self) -> None:
        try:
            status, text = http_get(self.url + "/metrics")
        except OSError:
            return
        if status == 200:
            self.samples.append(parse_soak_sample(text, time.time()))

    def _run(self) -> None:
        self._take()
        while not self._stop.wait(self.interval):
            self._take()

    def __enter__(self) -> SoakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def rss_by_minute(samples: Sequence[SoakSample]) -> list[float]:
    """The highest RSS (MB) of each minute of the soak, in order: the shape of the curve
    (a plateau, or a climb still going at the end)."""
    if not samples:
        return []
    start = samples[0].at
    minutes: dict[int, float] = {}
    for s in samples:
        if not math.isnan(s.rss_bytes):
            minute = int((s.at - start) // 60)
            minutes[minute] = max(minutes.get(minute, 0.0), s.rss_bytes / 2**20)
    return [minutes[m] for m in sorted(minutes)]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loadtests.soak", description=__doc__)
    parser.add_argument("--seconds", type=int, default=600, help="soak length (default 600)")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the baseline")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between scrapes")
    parser.add_argument("--users", type=int, default=8, help="Locust users (default 8)")
    parser.add_argument("--processes", type=int, default=default_processes())
    parser.add_argument("--profile", type=Path, default=DEFAULT_PROFILE, help="TOML profile")
    parser.add_argument("--max-rss-growth", type=float, default=SoakBounds.max_rss_growth)
    parser.add_argument("--max-spool-events", type=float, default=SoakBounds.max_spool_events)
    parser.add_argument(
        "--max-rollup-pending-rows", type=float, default=SoakBounds.max_rollup_pending_rows
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    bounds = SoakBounds(
        max_rss_growth=args.max_rss_growth,
        max_spool_events=args.max_spool_events,
        max_rollup_pending_rows=args.max_rollup_pending_rows,
    )
    profile = load_profile(args.profile)
    with tempfile.TemporaryDirectory(prefix="hookline-soak-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        directory = work / "report"
        for sub in ("locust", "logs"):
            (directory / sub).mkdir(parents=True)
        server = EmbeddedPostgres(work / "pg", durable=True)
        database_url = server.start()
        try:
            port = free_port()
            files = write_run_files(
                work / "run",
                make_sources(profile.provider_names),
                host=HOST,
                port=port,
                database_url=database_url,
                data_dir=str(work / "data"),
            )
            run = _Run(
                url=f"http://{HOST}:{port}",
                database_url=database_url,
                env=_locust_env(files.credentials, profile),
                directory=directory,
                providers=profile.provider_names,
                batch_size=profile.batch_size,
                seconds=args.seconds,
                processes=args.processes,
                cpu_threshold=90.0,
                spawn_rate=0.0,
            )
            log = directory / "logs" / "gateway.log"
            with gateway_process(files.config, log) as process:
                wait_ready(run.url, process, log, timeout=120)
                print(f"soak: {args.users} users for {args.seconds} s", flush=True)
                with SoakSampler(run.url, args.interval) as sampler:
                    record = _run_step(run, 1, args.users)
        except (RuntimeError, OSError) as exc:
            print(f"soak: {exc}", file=sys.stderr)
            return 1
        finally:
            server.stop()
    verdict = judge(sampler.samples, args.warmup, bounds)
    print(
        f"{record.measure.throughput:.0f} req/s, {record.events_per_second:.0f} events/s, "
        f"p99 {record.measure.p99_ms:g} ms, {len(sampler.samples)} samples"
    )
    print(
        f"RSS after the {args.warmup:g} s warm-up: {verdict.rss_baseline_mb:.1f} MB, highest "
        f"{verdict.rss_max_mb:.1f} MB ({verdict.rss_growth:+.1%}), "
        f"last {verdict.rss_last_mb:.1f} MB"
    )
    print(
        "RSS per minute (MB, highest): "
        + ", ".join(f"{mb:.1f}" for mb in rss_by_minute(sampler.samples))
    )
    print(
        f"deepest: batcher queue {verdict.max_queue_events:g} events, spool "
        f"{verdict.max_spool_events:g} events, rollup tallies {verdict.max_rollup_pending_rows:g}"
        f" rows, outbox lag {verdict.max_outbox_lag_seconds:g} s"
    )
    truth = record.truth
    print(
        f"truth: {truth.acknowledged_events} events acknowledged, {truth.stored} stored: "
        f"{'OK' if truth.ok else 'FAILED: ' + '; '.join(truth.problems())}"
    )
    for problem in verdict.problems:
        print(f"OUT OF BOUNDS: {problem}")
    return 0 if verdict.ok and truth.ok else 2


if __name__ == "__main__":
    sys.exit(main())
