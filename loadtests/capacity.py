"""Capacity search: a private PostgreSQL and gateway, Locust distributed, a verdict and a report.

    .venv/bin/python -m loadtests.capacity                       # search with the default profile
    .venv/bin/python -m loadtests.capacity --processes 4 --step-seconds 60
    .venv/bin/python -m loadtests.capacity --steps 5,20 --step-seconds 5   # fixed steps, no search
    .venv/bin/python -m loadtests.capacity --gateway-cpus 0 --generator-cpus 1  # one core each
    .venv/bin/python -m loadtests.capacity --expect-remote-workers 2 --processes 0 \
        --gateway-host 10.0.0.5 --master-bind-host 10.0.0.5      # Locust on other machines

Everything runs on 127.0.0.1 (unless ``--gateway-host`` / ``--master-bind-host``) and is
stopped before the script exits: an embedded PostgreSQL (durable, as in production, unless
``--no-fsync``), one ``hookline serve`` process on a free port with fresh load-test sources,
and one headless Locust run per step: a master and ``--processes`` forked workers, whose CPU
is watched (``loadtests.generator``). With ``--expect-remote-workers K`` the master listens
on the network and waits for K more workers, which other machines start with the printed
``join:`` line and whose own CPU figures reach the master (``loadtests.worker_figures``).
``--gateway-cpus`` / ``--generator-cpus`` pin the gateway to its own cores and everything
else to others (``loadtests.affinity``), so the knee is one replica's. The search
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
import math
import os
import platform
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from gateway.storage.embedded import EmbeddedPostgres, EmbeddedPostgresError
from handlers.registry import available_providers
from loadtests.affinity import cpus_of, format_cpus, parse_cpus, pin_this_thread
from loadtests.chart import read_history
from loadtests.credentials import LoadSource, load_credentials, make_sources, write_run_files
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
from loadtests.worker_figures import WorkerFigures, read_workers

__all__ = ["default_processes", "join_command", "main", "run_capacity", "step_seed"]

ROOT = Path(__file__).resolve().parents[1]
SLOS = ROOT / "grafana" / "slo" / "slos.yml"
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
MAX_STEPS = 8
MAX_USERS = 1000
MAX_STEP_SECONDS = 300
#: every worker of every step gets its own seed range (step_seed): 8 x 12 ranges fit, so
#: a run has at most 12 Locust workers in all (this machine's and remote ones)
MAX_PROCESSES = 12
#: a Locust process's first seconds (imports, connecting workers) are not load
GENERATOR_STARTUP_SECONDS = 3.0
#: Locust's default port for its master
LOCUST_MASTER_PORT = 5557
#: addresses that bind every interface: nothing a remote machine could be told to reach
_ANY_ADDRESS = frozenset({"", "*", "0.0.0.0", "::"})


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
    #: Locust workers other machines run (``--expect-remote-workers``); with any, the master
    #: listens on ``master_host:master_port`` and this script starts its ``processes``
    #: workers itself
    remote: int = 0
    master_host: str = HOST
    master_port: int = LOCUST_MASTER_PORT
    remote_wait: int = 300

    @property
    def workers(self) -> int:
        """Locust processes generating load in a step: every worker, or the one process."""
        return self.processes + self.remote if self.remote else max(1, self.processes)


def step_seed(index: int, processes: int) -> int:
    """``LOADTEST_SEED`` for step ``index`` (1-based): its workers take the ranges after those
    of the steps before, so no two generators of a run send the same event ids (the
    database is fresh per run). Independent random seeds would collide now and then, and
    a collision stores fewer rows than were acknowledged: a false loss."""
    seed = (index - 1) * processes * SEEDS_PER_WORKER
    if seed + processes * SEEDS_PER_WORKER > SEED_SPACE:
        raise ValueError(f"step {index} x {processes} processes exceed the seed space")
    return seed


def _locust_command(
    run: _Run, users: int, prefix: Path, seed: int, workers_file: Path
) -> list[str]:
    """The step's headless Locust: one process, a master forking ``processes`` workers, or
    (with remote workers) a master on the network waiting for every worker to join."""
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
        "--loadtest-seed", str(seed),
        "--loadtest-workers-file", str(workers_file),
    ]  # fmt: skip
    if run.remote:
        command += [
            "--master",
            "--master-bind-host", run.master_host,
            "--master-bind-port", str(run.master_port),
            "--expect-workers", str(run.workers),
            "--expect-workers-max-wait", str(run.remote_wait),
        ]  # fmt: skip
    elif run.processes > 1:
        command += ["--processes", str(run.processes)]
    return command


def _worker_command(run: _Run) -> list[str]:
    """One of this machine's workers when the master also waits for remote ones (Locust
    cannot fork workers for a master that listens on the network)."""
    return [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker",
        "--master-host", run.master_host, "--master-port", str(run.master_port),
        "--loglevel", "INFO",
    ]  # fmt: skip


def join_command(env: dict[str, str], master_host: str, master_port: int) -> str:
    """The shell command a remote machine runs, in a Hookline checkout, to give every step
    one Locust worker: the run's ``LOADTEST_*`` traffic profile and credentials path, and a
    loop, because each step's master tells its workers to quit when the step ends. The loop
    ends when no master has answered for 5 minutes (Locust's connect timeout) or on Ctrl-C."""
    profile = " ".join(
        f"{key}={shlex.quote(value)}" for key, value in sorted(env.items())
        if key.startswith("LOADTEST_")
    )  # fmt: skip
    worker = (
        f"{profile} .venv/bin/locust -f loadtests/locustfile.py --worker "
        f"--master-host {shlex.quote(master_host)} --master-port {master_port}"
    )
    return f"while {worker}; do sleep 1; done"


def _start_generators(
    run: _Run, command: list[str], env: dict[str, str], log: Path, stack: ExitStack
) -> tuple[subprocess.Popen[bytes], list[CpuWatcher]]:
    """The step's Locust master (or single process) and, with remote workers, this machine's
    workers, each watched (``loadtests.generator``); all stopped when ``stack`` closes."""
    output = stack.enter_context(log.open("wb"))
    master = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    stack.callback(_stop, master)
    watchers = [CpuWatcher(master.pid, name="master" if run.remote else None).start()]
    for number in range(1, run.processes + 1 if run.remote else 1):
        worker_log = stack.enter_context(log.with_name(f"{log.stem}_worker{number}.log").open("wb"))
        worker = subprocess.Popen(
            _worker_command(run), cwd=ROOT, env=env, stdout=worker_log, stderr=subprocess.STDOUT
        )
        stack.callback(_stop, worker)
        watchers.append(CpuWatcher(worker.pid, name=f"worker {number}").start())
    return master, watchers


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Let a Locust process finish (its master told it to quit), or kill it after 10 s."""
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _remote_cpu(workers: Sequence[WorkerFigures]) -> dict[str, float]:
    """Remote workers' CPU (as they reported it) for the saturation check, by name."""
    return {
        f"remote worker {w.index + 1} ({w.host})": w.cpu_share
        for w in workers
        if w.remote and not math.isnan(w.cpu_share)
    }


def _run_step(run: _Run, index: int, users: int) -> StepRecord:
    locust_dir, logs = run.directory / "locust", run.directory / "logs"
    prefix = locust_dir / f"step{index}"
    log = logs / f"step{index}_locust.log"
    workers_file = locust_dir / f"step{index}_workers.json"
    command = _locust_command(run, users, prefix, step_seed(index, run.workers), workers_file)
    wait_drained(run.url)
    before = stored_by_provider(run.database_url)
    # Locust exits 1 when any request failed: that is a result to report, not an error
    with GatewaySampler(run.url) as sampler, ExitStack() as stack:
        process, watchers = _start_generators(run, command, run.env, log, stack)
        try:
            code = process.wait(timeout=run.seconds + 120 + (run.remote_wait if run.remote else 0))
        finally:
            generator_cpu: dict[str, float] = {}
            local_pids: set[int] = set()
            for watcher in watchers:
                generator_cpu.update(watcher.stop(skip=GENERATOR_STARTUP_SECONDS))
                local_pids |= watcher.pids
    wait_drained(run.url)
    after = stored_by_provider(run.database_url)
    stats_file = prefix.with_name(prefix.name + "_stats.csv")
    json_file = prefix.with_name(prefix.name + ".json")
    if code not in (0, 1) or not stats_file.exists() or not json_file.exists():
        tail = log_tail(log, 40)
        if run.remote and "Gave up waiting for workers" in tail:
            raise RuntimeError(
                f"step {index}: not every Locust worker joined within {run.remote_wait} s "
                f"(expected {run.remote} remote and {run.processes} local); see {log}"
            )
        raise RuntimeError(f"locust failed ({code}):\n{tail}")
    host = socket.gethostname()
    workers = [
        replace(w, remote=not w.is_among(host, local_pids)) for w in read_workers(workers_file)
    ]
    generator_cpu.update(_remote_cpu(workers))
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
        workers=tuple(workers),
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


def _sources(args: argparse.Namespace, providers: list[str]) -> list[LoadSource]:
    """Fresh sources for ``providers``, or those of ``--credentials`` (prepared beforehand,
    e.g. already copied to the remote load machines)."""
    if args.credentials is None:
        return make_sources(providers)
    sources = [s for s in load_credentials(args.credentials) if s.provider in providers]
    missing = sorted(set(providers) - {s.provider for s in sources})
    if missing:
        raise RuntimeError(f"{args.credentials} has no source for {', '.join(missing)}")
    return sources


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run_capacity(
    args: argparse.Namespace,
    profile: Profile,
    objective: Objective,
    directory: Path,
    work: Path,
    notes: list[str] | None = None,
) -> list[StepRecord]:
    """Start PostgreSQL (under ``work``) and the gateway, search, stop them again; what the
    report should say about how the run was made is appended to ``notes``."""
    notes = [] if notes is None else notes
    server = EmbeddedPostgres(work / "pg", durable=not args.no_fsync)
    database_url = server.start()
    records: list[StepRecord] = []
    try:
        port = free_port()
        providers = profile.provider_names
        files = write_run_files(
            work / "run",
            _sources(args, providers),
            host=args.gateway_host,
            port=port,
            database_url=database_url,
            data_dir=str(work / "data"),
            log_level=args.log_level,
        )
        # prepared credentials stay where they are: the load machines may have them already
        credentials = args.credentials.resolve() if args.credentials else files.credentials
        run = _Run(
            url=_url(args.gateway_host, port),
            database_url=database_url,
            env=_locust_env(credentials, profile),
            directory=directory,
            providers=providers,
            batch_size=profile.batch_size,
            seconds=args.step_seconds,
            processes=args.processes,
            cpu_threshold=args.cpu_threshold,
            spawn_rate=args.spawn_rate,
            remote=args.expect_remote_workers,
            master_host=args.master_bind_host,
            master_port=args.master_bind_port,
            remote_wait=args.remote_wait_seconds,
        )
        if run.remote:
            _announce_remote(run, credentials, notes)
        log = directory / "logs" / "gateway.log"
        with gateway_process(files.config, log, cpus=args.gateway_cpus) as process:
            wait_ready(run.url, process, log, timeout=120)
            if args.gateway_cpus is not None:
                notes.append(_pinning_note(process.pid, server))
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


def _announce_remote(run: _Run, credentials: Path, notes: list[str]) -> None:
    """Print what each remote load machine must do to join every step."""
    command = join_command(run.env, run.master_host, run.master_port)
    print(
        f"waiting for {run.remote} remote Locust worker(s) at each step (up to "
        f"{run.remote_wait} s). On each remote machine, in a Hookline checkout with .venv: copy "
        f"{credentials} to the same path (scp; it signs for this run's sources, keep it "
        "private), then run the line after 'join:'",
        flush=True,
    )
    print(f"join: {command}", flush=True)
    notes.append(
        f"Locust workers: {run.processes} on this machine, {run.remote} remote; the master "
        f"listened on {run.master_host}:{run.master_port}; remote workers joined with "
        f"`{command}`"
    )


def _pinning_note(gateway_pid: int, server: EmbeddedPostgres) -> str:
    """The CPUs the gateway's and PostgreSQL's threads were found allowed on (read back from
    /proc, so the report shows what was, not what was asked)."""
    postgres_cpus = "?"
    try:
        first_line = (server.cluster_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        postgres_cpus = format_cpus(cpus_of(int(first_line)))
    except (OSError, ValueError):
        pass
    return (
        "CPU affinity: the gateway process (every thread) on CPU "
        f"{format_cpus(cpus_of(gateway_pid))}; "
        f"PostgreSQL on CPU {postgres_cpus}; Locust and this script on CPU "
        f"{format_cpus(os.sched_getaffinity(0))}"
    )


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


def _address(option: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        host = text.strip().strip("[]")
        if host in _ANY_ADDRESS:
            raise argparse.ArgumentTypeError(
                f"{option} needs this machine's address as the load machines reach it, "
                "not a wildcard"
            )
        return host

    return parse


def _cpus(text: str) -> frozenset[int]:
    try:
        cpus = parse_cpus(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not hasattr(os, "sched_getaffinity"):
        raise argparse.ArgumentTypeError("CPU affinity needs Linux")
    unavailable = cpus - os.sched_getaffinity(0)
    if unavailable:
        raise argparse.ArgumentTypeError(
            f"CPU {format_cpus(unavailable)} is not available here "
            f"(available: {format_cpus(os.sched_getaffinity(0))})"
        )
    return cpus


def _check_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What single options cannot check: how they combine."""
    if args.processes + args.expect_remote_workers > MAX_PROCESSES:
        parser.error(f"at most {MAX_PROCESSES} Locust workers in all (--processes + remote)")
    if args.processes == 0 and not args.expect_remote_workers:
        parser.error("--processes 0 needs --expect-remote-workers")
    if (args.gateway_cpus is None) != (args.generator_cpus is None):
        parser.error("give --gateway-cpus and --generator-cpus together")
    if args.gateway_cpus is not None and args.gateway_cpus & args.generator_cpus:
        parser.error("--gateway-cpus and --generator-cpus must not share a CPU")


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
        description="Find Hookline's ingest capacity on this machine (127.0.0.1 unless "
        "--gateway-host / --master-bind-host say otherwise). See docs/capacity.md.",
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
        type=_bounded_int(0, MAX_PROCESSES, "processes"),
        default=default_processes(),
        help="Locust worker processes on this machine (default: half the CPUs; 0 only with "
        "remote workers)",
    )
    generator.add_argument(
        "--cpu-threshold",
        type=_bounded_float(0.1, 1.0, "CPU threshold"),
        default=GENERATOR_CPU_THRESHOLD,
        help="share of a core at which a Locust process counts as saturated (0.85)",
    )
    remote = parser.add_argument_group("several load machines (docs/capacity.md)")
    remote.add_argument(
        "--expect-remote-workers",
        type=_bounded_int(0, MAX_PROCESSES, "remote workers"),
        default=0,
        metavar="K",
        help="Locust workers other machines run; every step waits for all of them (0)",
    )
    remote.add_argument(
        "--master-bind-host",
        type=_address("--master-bind-host"),
        default=HOST,
        help="address the Locust master listens on and remote workers connect to (127.0.0.1)",
    )
    remote.add_argument(
        "--master-bind-port",
        type=_bounded_int(1, 65535, "port"),
        default=LOCUST_MASTER_PORT,
        help=f"the Locust master's port ({LOCUST_MASTER_PORT})",
    )
    remote.add_argument(
        "--remote-wait-seconds",
        type=_bounded_int(10, 3600, "wait"),
        default=300,
        help="how long each step waits for every worker to join (300)",
    )
    remote.add_argument(
        "--gateway-host",
        type=_address("--gateway-host"),
        default=HOST,
        help="address the gateway listens on and Locust sends to; remote workers must reach "
        "it (127.0.0.1)",
    )
    remote.add_argument(
        "--credentials",
        type=Path,
        default=None,
        help="signing credentials.json to reuse (from `loadtests.traffic write-config`), e.g. "
        "already copied to the remote machines (default: fresh sources per run)",
    )
    pinning = parser.add_argument_group("CPU affinity (Linux; both or neither)")
    pinning.add_argument(
        "--gateway-cpus",
        type=_cpus,
        default=None,
        help="CPUs the gateway process runs on, e.g. 0 (one replica on one core)",
    )
    pinning.add_argument(
        "--generator-cpus",
        type=_cpus,
        default=None,
        help="CPUs for Locust, PostgreSQL and this script, e.g. 1",
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
    _check_options(parser, args)
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
    load = os.getloadavg()[0]
    if args.gateway_cpus is not None:
        # from here on this thread, and PostgreSQL and Locust which it starts, keep off the
        # gateway's CPUs; only the gateway process is started on them
        pin_this_thread(args.generator_cpus)
        sharing = (
            f"the gateway pinned to CPU {format_cpus(args.gateway_cpus)}, PostgreSQL and "
            f"Locust to CPU {format_cpus(args.generator_cpus)}"
        )
    else:
        sharing = f"{os.cpu_count()} CPUs shared by the gateway, PostgreSQL and Locust"
    info = RunInfo(
        started=started.strftime("%Y-%m-%d %H:%M UTC"),
        machine=f"{platform.node()} ({platform.machine()}, {sharing}; load average "
        f"{load:.1f} before the run: anything else running takes CPU from the gateway)",
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
        gateway_cpus=None if args.gateway_cpus is None else len(args.gateway_cpus),
        remote_workers=args.expect_remote_workers,
    )
    records: list[StepRecord] = []
    failure: str | None = None
    try:
        records = run_capacity(args, profile, objective, directory, work, info.notes)
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
