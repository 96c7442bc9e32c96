"""Capacity search: a private PostgreSQL and gateway, Locust distributed, a verdict and a report.

    .venv/bin/python -m loadtests.capacity                       # search with the default profile
    .venv/bin/python -m loadtests.capacity --processes 4 --step-seconds 60
    .venv/bin/python -m loadtests.capacity --steps 5,20 --step-seconds 5   # fixed steps, no search

Everything runs on 127.0.0.1 and is stopped before the script exits: an embedded PostgreSQL
(durable, as in production, unless ``--no-fsync``), one ``hookline serve`` process on a free
port with fresh load-test sources, and one headless Locust run per step: a master and
``--processes`` forked workers, whose CPU is watched (``loadtests.generator``). The search
(``loadtests.verdict``) climbs from ``--start-users`` x ``--growth`` until the gateway
saturates, then bisects around the knee; a step where the generator saturated is invalid and
ends the search. Around every step the gateway is let drain and the rows stored per provider
are compared with what Locust saw acknowledged (``loadtests.truth``); any loss fails the run
(exit code 2). During the step ``/metrics`` is sampled each second
(``loadtests.gateway_figures``). The report (``loadtests.report``) and the raw CSVs go to
``--out/<UTC time>/``; the database (under the temporary directory) is removed unless
``--keep-database``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from gateway.storage.embedded import EmbeddedPostgres, EmbeddedPostgresError
from handlers.registry import available_providers
from loadtests.chart import read_history
from loadtests.credentials import make_sources, write_run_files
from loadtests.gateway_figures import Sample, during, summarize
from loadtests.generator import CpuWatcher, count_cpu_warnings
from loadtests.harness import (
    HOST,
    GatewaySampler,
    environment_without,
    free_port,
    gateway_process,
    log_tail,
    stored_by_provider,
    wait_drained,
    wait_ready,
)
from loadtests.mix import MAX_BATCH_SIZE, parse_weights
from loadtests.profile import DEFAULT_PROFILE, Profile, ProfileError, load_profile
from loadtests.report import DEFAULT_HEADROOM, RunInfo, StepRecord, write_report
from loadtests.stats import AGGREGATED, read_stats_csv
from loadtests.traffic import SEED_SPACE, SEEDS_PER_WORKER
from loadtests.truth import check_step, count_by_name
from loadtests.verdict import (
    GENERATOR_CPU_THRESHOLD,
    Objective,
    StepMeasure,
    generator_saturation,
    next_users,
    objective_from_slos,
)

__all__ = ["default_processes", "main", "run_capacity", "step_seed"]

ROOT = Path(__file__).resolve().parents[1]
SLOS = ROOT / "grafana" / "slo" / "slos.yml"
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
MAX_STEPS = 8
MAX_USERS = 1000
MAX_STEP_SECONDS = 300
#: every worker of every step gets its own seed range (step_seed): 8 x 12 ranges fit
MAX_PROCESSES = 12
#: a Locust process's first seconds (imports, connecting workers) are not load
GENERATOR_STARTUP_SECONDS = 3.0


@dataclass(frozen=True)
class _Run:
    """What every step of one run shares."""

    url: str
    database_url: str
    env: dict[str, str]
    directory: Path
    providers: list[str]
    batch_size: int
    seconds: int
    processes: int
    cpu_threshold: float
    spawn_rate: float


def step_seed(index: int, processes: int) -> int:
    """``LOADTEST_SEED`` for step ``index`` (1-based): its workers take the ranges after those
    of the steps before, so no two generators of a run send the same event ids (the
    database is fresh per run). Independent random seeds would collide now and then, and
    a collision stores fewer rows than were acknowledged: a false loss."""
    seed = (index - 1) * processes * SEEDS_PER_WORKER
    if seed + processes * SEEDS_PER_WORKER > SEED_SPACE:
        raise ValueError(f"step {index} x {processes} processes exceed the seed space")
    return seed


def _locust_command(run: _Run, users: int, prefix: Path) -> list[str]:
    command = [
        sys.executable, "-m", "locust",
        "-f", str(LOCUSTFILE),
        "--headless", "--only-summary",
        "-u", str(users),
        "-r", f"{run.spawn_rate or users:g}",
        "-t", f"{run.seconds}s",
        "--host", run.url,
        "--csv", str(prefix),
        "--json-file", str(prefix),
        "--stop-timeout", "10",
        "--loglevel", "INFO",
    ]  # fmt: skip
    if run.processes > 1:
        command += ["--processes", str(run.processes)]
    return command


def _run_step(run: _Run, index: int, users: int) -> StepRecord:
    locust_dir, logs = run.directory / "locust", run.directory / "logs"
    prefix = locust_dir / f"step{index}"
    log = logs / f"step{index}_locust.log"
    wait_drained(run.url)
    before = stored_by_provider(run.database_url)
    # Locust exits 1 when any request failed: that is a result to report, not an error
    with GatewaySampler(run.url) as sampler, log.open("wb") as output:
        process = subprocess.Popen(
            _locust_command(run, users, prefix),
            cwd=ROOT,
            env={**run.env, "LOADTEST_SEED": str(step_seed(index, max(1, run.processes)))},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        watcher = CpuWatcher(process.pid).start()
        try:
            code = process.wait(timeout=run.seconds + 120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        finally:
            generator_cpu = watcher.stop(skip=GENERATOR_STARTUP_SECONDS)
    wait_drained(run.url)
    after = stored_by_provider(run.database_url)
    stats_file = prefix.with_name(prefix.name + "_stats.csv")
    json_file = prefix.with_name(prefix.name + ".json")
    if code not in (0, 1) or not stats_file.exists() or not json_file.exists():
        raise RuntimeError(f"locust failed ({code}):\n{log_tail(log, 40)}")
    total = read_stats_csv(stats_file)[AGGREGATED]
    counts = count_by_name(json.loads(json_file.read_text()))
    requests = sum(n for n, _ in counts.values())
    failures = sum(f for _, f in counts.values())
    warnings = count_cpu_warnings(log.read_text(errors="replace"))
    measure = StepMeasure(
        users=users,
        throughput=total.requests_per_second,
        p99_ms=total.p99_ms,
        error_ratio=failures / requests if requests else 0.0,
        generator_saturated=generator_saturation(generator_cpu, warnings, run.cpu_threshold),
    )
    stored = {p: after.get(p, 0) - before.get(p, 0) for p in run.providers}
    _append_samples(run.directory / "gateway_samples.csv", index, sampler.samples)
    return StepRecord(
        index=index,
        users=users,
        seconds=float(run.seconds),
        total=replace(total, requests=requests, failures=failures),
        measure=measure,
        generator_cpu=generator_cpu,
        locust_warnings=warnings,
        gateway=summarize(_under_load(sampler.samples, prefix)),
        truth=check_step(counts, stored, run.providers, run.batch_size),
    )


def _under_load(samples: Sequence[Sample], prefix: Path) -> list[Sample]:
    """The gateway samples taken while Locust's users were running (its history says when)."""
    history_file = prefix.with_name(prefix.name + "_stats_history.csv")
    history = read_history(history_file) if history_file.exists() else []
    if not history:
        return list(samples)
    return during(samples, history[0].at, history[-1].at)


def _append_samples(path: Path, index: int, samples: Sequence[Sample]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(
                ("step", "seconds", "cpu_seconds", "flush_seconds_sum", "flushes",
                 "batch_events_sum", "spool_events", "queue_events", "breaker_state",
                 "storage_connected")
            )  # fmt: skip
        start = samples[0].at if samples else 0.0
        for s in samples:
            writer.writerow(
                (index, round(s.at - start, 3), s.cpu_seconds, s.flush_seconds_sum,
                 s.flush_count, s.batch_events_sum, s.spool_events, s.queue_events,
                 s.breaker_state, s.storage_connected)
            )  # fmt: skip


def _locust_env(files_credentials: Path, profile: Profile) -> dict[str, str]:
    return {
        **environment_without("LOADTEST_"),
        "LOADTEST_CREDENTIALS": str(files_credentials),
        "LOADTEST_PROVIDERS": profile.providers_env(),
        "LOADTEST_BATCH_SIZE": str(profile.batch_size),
        "LOADTEST_DUPLICATE_RATIO": str(profile.duplicate_ratio),
        "LOADTEST_BAD_SIGNATURE_RATIO": str(profile.bad_signature_ratio),
        "LOADTEST_EVENT_WEIGHTS": profile.event_weights_env(),
    }


def run_capacity(
    args: argparse.Namespace, profile: Profile, objective: Objective, directory: Path, work: Path
) -> list[StepRecord]:
    """Start PostgreSQL (under ``work``) and the gateway, search, stop them again."""
    server = EmbeddedPostgres(work / "pg", durable=not args.no_fsync)
    database_url = server.start()
    records: list[StepRecord] = []
    try:
        port = free_port()
        providers = profile.provider_names
        files = write_run_files(
            work / "run",
            make_sources(providers),
            host=HOST,
            port=port,
            database_url=database_url,
            data_dir=str(work / "data"),
            log_level=args.log_level,
        )
        run = _Run(
            url=f"http://{HOST}:{port}",
            database_url=database_url,
            env=_locust_env(files.credentials, profile),
            directory=directory,
            providers=providers,
            batch_size=profile.batch_size,
            seconds=args.step_seconds,
            processes=args.processes,
            cpu_threshold=args.cpu_threshold,
            spawn_rate=args.spawn_rate,
        )
        log = directory / "logs" / "gateway.log"
        with gateway_process(files.config, log) as process:
            wait_ready(run.url, process, log, timeout=120)
            while len(records) < args.max_steps:
                users = _next(args, records, objective)
                if users is None:
                    break
                index = len(records) + 1
                print(f"step {index}: {users} users for {args.step_seconds} s", flush=True)
                record = _run_step(run, index, users)
                records.append(record)
                print(f"  {_one_line(record, objective)}", flush=True)
                if process.poll() is not None:
                    raise RuntimeError(f"the gateway exited during the run:\n{log_tail(log)}")
                if not record.truth.ok:
                    break  # a loss fails the run: no point loading further
        return records
    finally:
        server.stop()


def _next(
    args: argparse.Namespace, records: Sequence[StepRecord], objective: Objective
) -> int | None:
    if args.steps:
        return args.steps[len(records)] if len(records) < len(args.steps) else None
    return next_users(
        [r.measure for r in records],
        objective,
        start=args.start_users,
        growth=args.growth,
        max_users=args.max_users,
        refine=args.refine,
    )


def _one_line(record: StepRecord, objective: Objective) -> str:
    m = record.measure
    state = "valid" if m.valid else f"INVALID ({m.generator_saturated})"
    return (
        f"{m.throughput:.1f} req/s, {record.events_per_second:.1f} events/s, p99 {m.p99_ms:g} ms, "
        f"errors {m.error_ratio:.2%}, objective {'met' if m.meets(objective) else 'missed'}, "
        f"{state}, truth {'ok' if record.truth.ok else 'FAILED'}"
    )


def _steps(text: str) -> list[int]:
    try:
        steps = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("steps are comma-separated user counts") from None
    if not 1 <= len(steps) <= MAX_STEPS or not all(1 <= s <= MAX_USERS for s in steps):
        raise argparse.ArgumentTypeError(
            f"give 1 to {MAX_STEPS} steps of 1 to {MAX_USERS} users each"
        )
    return steps


def _bounded_int(low: int, high: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be {low} to {high}")
        return value

    return parse


def _bounded_float(low: float, high: float, what: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be {low:g} to {high:g}")
        return value

    return parse


def _event_weights(text: str) -> str:
    try:
        parse_weights(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _providers(text: str) -> list[str]:
    available = available_providers()
    wanted = [p.strip() for p in text.split(",") if p.strip()]
    unknown = sorted(set(wanted) - set(available))
    if unknown or not wanted:
        raise argparse.ArgumentTypeError(
            f"unknown providers {', '.join(unknown)} (available: {', '.join(available)})"
        )
    return wanted


def default_processes(cpus: int | None = None) -> int:
    """Half the CPUs (the gateway and PostgreSQL need the rest on the same machine), at most
    ``MAX_PROCESSES``."""
    return min(MAX_PROCESSES, max(1, (cpus or os.cpu_count() or 2) // 2))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.capacity",
        description="Find Hookline's ingest capacity on this machine (127.0.0.1 only). "
        "See docs/capacity.md.",
    )
    search = parser.add_argument_group("search")
    search.add_argument(
        "--steps", type=_steps, default=None, help="fixed users per step, no search (e.g. 5,20)"
    )
    search.add_argument("--start-users", type=_bounded_int(1, MAX_USERS, "users"), default=10)
    search.add_argument(
        "--growth", type=_bounded_float(1.1, 10.0, "growth"), default=2.0, help="x per climb step"
    )
    search.add_argument("--max-users", type=_bounded_int(1, MAX_USERS, "users"), default=640)
    search.add_argument("--max-steps", type=_bounded_int(1, MAX_STEPS, "steps"), default=MAX_STEPS)
    search.add_argument(
        "--refine", type=_bounded_int(0, 4, "refine"), default=2, help="bisection steps (2)"
    )
    search.add_argument(
        "--step-seconds", type=_bounded_int(1, MAX_STEP_SECONDS, "step seconds"), default=20
    )
    search.add_argument(
        "--spawn-rate", type=float, default=0.0, help="users/s (default: all in 1 s)"
    )
    objective = parser.add_argument_group("objective (defaults from grafana/slo/slos.yml)")
    objective.add_argument("--p99-ms", type=_bounded_float(1, 60_000, "p99"), default=None)
    objective.add_argument(
        "--max-error-ratio", type=_bounded_float(0, 1, "error ratio"), default=None
    )
    generator = parser.add_argument_group("load generator")
    generator.add_argument(
        "--processes",
        type=_bounded_int(1, MAX_PROCESSES, "processes"),
        default=default_processes(),
        help="Locust worker processes (default: half the CPUs)",
    )
    generator.add_argument(
        "--cpu-threshold",
        type=_bounded_float(0.1, 1.0, "CPU threshold"),
        default=GENERATOR_CPU_THRESHOLD,
        help="share of a core at which a Locust process counts as saturated (0.85)",
    )
    traffic = parser.add_argument_group("traffic (override the profile)")
    traffic.add_argument("--profile", type=Path, default=DEFAULT_PROFILE, help="TOML profile")
    traffic.add_argument("--providers", type=_providers, default=None, help="comma-separated")
    traffic.add_argument(
        "--batch-size", type=_bounded_int(1, MAX_BATCH_SIZE, "batch size"), default=None
    )
    traffic.add_argument("--duplicate-ratio", type=_bounded_float(0, 1, "ratio"), default=None)
    traffic.add_argument("--bad-signature-ratio", type=_bounded_float(0, 1, "ratio"), default=None)
    traffic.add_argument("--event-weights", type=_event_weights, default=None)
    scaling = parser.add_argument_group("autoscaling advice")
    scaling.add_argument(
        "--replica-cpu", type=_bounded_float(0.1, 64, "CPU"), default=1.0, help="pod CPU request"
    )
    scaling.add_argument(
        "--headroom", type=_bounded_float(0.1, 1.0, "headroom"), default=DEFAULT_HEADROOM
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--out", type=Path, default=Path("capacity-runs"), help="runs go to OUT/<UTC time>/"
    )
    output.add_argument(
        "--keep-database", action="store_true", help="keep PostgreSQL's data directory"
    )
    output.add_argument("--log-level", default="info", help="gateway log level (default info)")
    output.add_argument(
        "--no-fsync", action="store_true", help="PostgreSQL without fsync (not production-like)"
    )
    return parser


def _profile(args: argparse.Namespace) -> Profile:
    profile = load_profile(args.profile)
    if args.providers is not None:
        shares = profile.shares()
        profile = replace(profile, providers={p: shares.get(p, 1) for p in args.providers})
    if args.batch_size is not None:
        profile = replace(profile, batch_size=args.batch_size)
    if args.duplicate_ratio is not None:
        profile = replace(profile, duplicate_ratio=args.duplicate_ratio)
    if args.bad_signature_ratio is not None:
        profile = replace(profile, bad_signature_ratio=args.bad_signature_ratio)
    if args.event_weights is not None:
        profile = replace(profile, event_weights=parse_weights(args.event_weights))
    if profile.duplicate_ratio + profile.bad_signature_ratio > 1.0:
        raise ProfileError("the duplicate and bad-signature ratios add up to more than 1")
    return profile


def _objective(args: argparse.Namespace) -> Objective:
    objective = objective_from_slos(SLOS)
    if args.p99_ms is not None:
        objective = replace(objective, p99_ms=args.p99_ms)
    if args.max_error_ratio is not None:
        objective = replace(objective, max_error_ratio=args.max_error_ratio)
    return objective


def main(argv: Sequence[str] | None = None) -> int:
    """0: report written, every acknowledged event stored; 2: the truth check failed;
    1: the run could not be made."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        profile = _profile(args)
    except ProfileError as exc:
        parser.error(str(exc))
    objective = _objective(args)
    started = datetime.now(UTC)
    directory = args.out / started.strftime("%Y%m%dT%H%M%SZ")
    directory.mkdir(parents=True, exist_ok=False)
    for sub in ("locust", "logs"):
        (directory / sub).mkdir()
    # PostgreSQL's directory lives apart from the report: /tmp is traversable by the user
    # the embedded PostgreSQL may run as, and nothing of it is left beside the report
    work = Path(tempfile.mkdtemp(prefix="hookline-capacity-"))
    os.chmod(work, 0o755)
    info = RunInfo(
        started=started.strftime("%Y-%m-%d %H:%M UTC"),
        machine=f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs shared by "
        f"the gateway, PostgreSQL and Locust; load average {os.getloadavg()[0]:.1f} before "
        "the run: anything else running takes CPU from the gateway)",
        profile=str(args.profile),
        traffic=(
            f"{', '.join(f'{p}:{w}' for p, w in profile.shares().items())}"
            f"; batch size {profile.batch_size}; duplicates {profile.duplicate_ratio:g}; "
            f"forged {profile.bad_signature_ratio:g}"
        ),
        objective=objective,
        processes=args.processes,
        step_seconds=args.step_seconds,
        postgres="without fsync (not production-like)" if args.no_fsync else "durable (fsync)",
        replica_cpu=args.replica_cpu,
        headroom=args.headroom,
        cpu_threshold=args.cpu_threshold,
    )
    records: list[StepRecord] = []
    failure: str | None = None
    try:
        records = run_capacity(args, profile, objective, directory, work)
    except (RuntimeError, EmbeddedPostgresError, subprocess.TimeoutExpired, OSError) as exc:
        failure = str(exc)
    finally:
        if args.keep_database:
            print(f"database directory kept: {work / 'pg'}")
        else:
            shutil.rmtree(work, ignore_errors=True)
            print(f"database directory removed: {work}")
    if failure is not None:
        info.notes.append(f"The run stopped early: {failure.splitlines()[0]}")
    report = write_report(directory, info, records)
    print(f"report: {report}")
    if failure is not None:
        print(f"capacity: {failure}", file=sys.stderr)
        return 1
    return 0 if all(r.truth.ok for r in records) else 2


if __name__ == "__main__":
    sys.exit(main())
