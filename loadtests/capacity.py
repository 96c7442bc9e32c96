"""Capacity test: a private PostgreSQL and gateway, then Locust at increasing user counts.

    .venv/bin/python -m loadtests.capacity                       # 10, 50, 100 users x 20 s
    .venv/bin/python -m loadtests.capacity --steps 5,20 --step-seconds 10 --batch-size 10

Everything runs on 127.0.0.1 and is stopped before the script exits: an embedded PostgreSQL
(durable, as in production, unless ``--no-fsync``) under a temporary directory, one
``hookline serve`` process on a free port with fresh load-test sources, and one headless
Locust run per step (bounded: at most 8 steps, 1000 users, 300 s each). The table shows,
per step: users, requests/s and p50/p95/p99 latency (Locust's CSV), events/s (Locust's
request rate times the new events stored per request, counted by the gateway's
``hookline_events_received_total`` / ``hookline_webhook_requests_total``) and failures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gateway.storage.embedded import EmbeddedPostgres, EmbeddedPostgresError
from handlers.registry import available_providers
from loadtests.credentials import make_sources, write_run_files
from loadtests.mix import MAX_BATCH_SIZE, parse_weights
from loadtests.stats import AGGREGATED, StepResult, counter_total, format_table, read_stats_csv

__all__ = ["main", "run_capacity"]

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
HOST = "127.0.0.1"
MAX_STEPS = 8
MAX_USERS = 1000
MAX_STEP_SECONDS = 300
EVENTS_COUNTER = "hookline_events_received_total"
REQUESTS_COUNTER = "hookline_webhook_requests_total"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def _gateway(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``hookline serve`` with ``config``; stopped (SIGTERM, then SIGKILL) on exit."""
    env = {**_environment_without("HOOKLINE_"), "HOOKLINE_CONFIG": str(config)}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _environment_without(prefix: str) -> dict[str, str]:
    """This process's environment minus ``prefix*`` variables, so the caller's settings
    (e.g. ``HOOKLINE_DATABASE_URL``) cannot redirect the processes started here."""
    return {key: value for key, value in os.environ.items() if not key.startswith(prefix)}


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the gateway exited ({process.returncode}):\n{_log_tail(log)}")
        try:
            if _get(url + "/readyz", timeout=2.0)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"the gateway was not ready after {timeout:.0f} s:\n{_log_tail(log)}")


def _gateway_counts(url: str) -> tuple[float, float] | None:
    """(new events stored, webhook requests answered) so far, from the gateway's /metrics."""
    try:
        status, text = _get(url + "/metrics")
    except OSError:
        return None
    if status != 200:
        return None
    return counter_total(text, EVENTS_COUNTER), counter_total(text, REQUESTS_COUNTER)


def _run_step(
    url: str,
    users: int,
    seconds: int,
    spawn_rate: float,
    csv_prefix: Path,
    env: dict[str, str],
) -> StepResult:
    before = _gateway_counts(url)
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "-u",
        str(users),
        "-r",
        f"{spawn_rate:g}",
        "-t",
        f"{seconds}s",
        "--host",
        url,
        "--csv",
        str(csv_prefix),
        "--stop-timeout",
        "10",
        "--loglevel",
        "INFO",
    ]
    # Locust exits 1 when any request failed: that is a result to report, not an error
    log = csv_prefix.with_name(csv_prefix.name + "_locust.log")
    with log.open("wb") as output:
        result = subprocess.run(
            command,
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=seconds + 90,
        )
    stats_file = csv_prefix.with_name(csv_prefix.name + "_stats.csv")
    if result.returncode not in (0, 1) or not stats_file.exists():
        raise RuntimeError(f"locust failed ({result.returncode}):\n{_log_tail(log, 40)}")
    after = _gateway_counts(url)
    total = read_stats_csv(stats_file)[AGGREGATED]
    if before is None or after is None:
        return StepResult(users=users, seconds=float(seconds), total=total)
    return StepResult(
        users=users,
        seconds=float(seconds),
        total=total,
        events_stored=after[0] - before[0],
        gateway_requests=after[1] - before[1],
    )


def run_capacity(args: argparse.Namespace, work: Path) -> list[StepResult]:
    """Start PostgreSQL and the gateway under ``work``, run every step, stop them again."""
    server = EmbeddedPostgres(work / "pg", durable=not args.no_fsync)
    database_url = server.start()
    try:
        port = _free_port()
        files = write_run_files(
            work / "run",
            make_sources(args.providers),
            host=HOST,
            port=port,
            database_url=database_url,
            data_dir=str(work / "data"),
            log_level=args.log_level,
        )
        url = f"http://{HOST}:{port}"
        log = work / "gateway.log"
        env = {
            **_environment_without("LOADTEST_"),
            "LOADTEST_CREDENTIALS": str(files.credentials),
            "LOADTEST_BATCH_SIZE": str(args.batch_size),
            "LOADTEST_DUPLICATE_RATIO": str(args.duplicate_ratio),
            "LOADTEST_BAD_SIGNATURE_RATIO": str(args.bad_signature_ratio),
        }
        if args.event_weights:
            env["LOADTEST_EVENT_WEIGHTS"] = args.event_weights
        results: list[StepResult] = []
        with _gateway(files.config, log) as process:
            _wait_ready(url, process, log, timeout=120)
            for index, users in enumerate(args.steps):
                spawn_rate = args.spawn_rate or float(users)
                prefix = work / f"step{index + 1}-{users}u"
                print(
                    f"step {index + 1}/{len(args.steps)}: {users} users for {args.step_seconds} s"
                )
                results.append(_run_step(url, users, args.step_seconds, spawn_rate, prefix, env))
                if process.poll() is not None:
                    raise RuntimeError(f"the gateway exited during the run:\n{_log_tail(log)}")
        return results
    finally:
        server.stop()


def _finite(value: Any) -> Any:
    """NaN (no samples) as null, so the JSON stays standard."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


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


def _seconds(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_STEP_SECONDS:
        raise argparse.ArgumentTypeError(f"step seconds must be 1 to {MAX_STEP_SECONDS}")
    return value


def _batch_size(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_BATCH_SIZE:
        raise argparse.ArgumentTypeError(f"batch size must be 1 to {MAX_BATCH_SIZE}")
    return value


def _ratio(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("a ratio is between 0 and 1")
    return value


def _event_weights(text: str) -> str:
    if not text:
        return text  # the default mix
    try:
        parse_weights(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _providers(text: str) -> list[str]:
    available = available_providers()
    wanted = [p.strip() for p in text.split(",") if p.strip()] if text else list(available)
    unknown = sorted(set(wanted) - set(available))
    if unknown or not wanted:
        raise argparse.ArgumentTypeError(
            f"unknown providers {', '.join(unknown)} (available: {', '.join(available)})"
        )
    return wanted


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.capacity",
        description="Measure Hookline's ingest capacity on this machine (127.0.0.1 only).",
    )
    parser.add_argument("--steps", type=_steps, default=[10, 50, 100], help="users per step")
    parser.add_argument("--step-seconds", type=_seconds, default=20, help="seconds per step")
    parser.add_argument(
        "--spawn-rate", type=float, default=0.0, help="users/s (default: all in 1 s)"
    )
    parser.add_argument("--providers", type=_providers, default="", help="comma-separated")
    parser.add_argument(
        "--batch-size", type=_batch_size, default=1, help="events per batched request (1)"
    )
    parser.add_argument("--duplicate-ratio", type=_ratio, default=0.0, help="redeliveries (0)")
    parser.add_argument(
        "--bad-signature-ratio", type=_ratio, default=0.0, help="forged requests (0)"
    )
    parser.add_argument(
        "--event-weights", type=_event_weights, default="", help="e.g. delivered=9,bounced=1"
    )
    parser.add_argument("--log-level", default="info", help="gateway log level (default info)")
    parser.add_argument(
        "--no-fsync", action="store_true", help="PostgreSQL without fsync (not production-like)"
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, CSVs)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.duplicate_ratio + args.bad_signature_ratio > 1.0:
        parser.error("--duplicate-ratio and --bad-signature-ratio add up to more than 1")
    work = Path(tempfile.mkdtemp(prefix="hookline-capacity-"))
    os.chmod(work, 0o755)  # the embedded PostgreSQL may run as another user
    try:
        results = run_capacity(args, work)
    except (RuntimeError, EmbeddedPostgresError, subprocess.TimeoutExpired) as exc:
        print(f"capacity: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(
        f"providers: {', '.join(args.providers)} | batch size {args.batch_size} | "
        f"duplicates {args.duplicate_ratio:g} | bad signatures {args.bad_signature_ratio:g} | "
        f"PostgreSQL {'without fsync' if args.no_fsync else 'durable'} | "
        f"{args.step_seconds} s per step | {os.cpu_count()} CPUs shared by all processes"
    )
    print(format_table(results))
    if args.json:
        document = [{**asdict(r), "events_per_second": r.events_per_second} for r in results]
        args.json.write_text(json.dumps(_finite(document), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
