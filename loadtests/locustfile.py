"""Locust load test for Hookline's webhook endpoints: one task per provider.

    python -m loadtests.traffic write-config --out /tmp/lt
    HOOKLINE_CONFIG=/tmp/lt/hookline.toml .venv/bin/hookline serve
    LOADTEST_CREDENTIALS=/tmp/lt/credentials.json \\
        .venv/bin/locust -f loadtests/locustfile.py --headless -u 50 -r 10 -t 60s \\
        --host http://127.0.0.1:8000

Knobs are ``LOADTEST_*`` environment variables (see ``loadtests/options.py``); two Locust
options serve the capacity script: ``--loadtest-seed`` (the run's first event seed, which a
master hands to every worker, remote ones too) and ``--loadtest-workers-file`` (where a
master writes what each worker reported: ``loadtests/worker_figures.py``). Every request
is checked: fresh and duplicate requests must be acknowledged with 200 and the right
``accepted`` count, bad-signature requests must get 401. Anything else is a Locust failure,
so a clean run exits 0.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]  # no stubs; Locust depends on it
from locust import FastHttpUser, constant, events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

if __package__ in (None, ""):  # run by path: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadtests.credentials import LoadSource, load_credentials
from loadtests.options import LoadOptions, OptionsError
from loadtests.traffic import SEED_SPACE, SEEDS_PER_WORKER, TrafficGenerator
from loadtests.worker_figures import WorkerClock, WorkerLog


def _load() -> tuple[LoadOptions, list[LoadSource], dict[str, int]]:
    try:
        options = LoadOptions.from_env()
    except OptionsError as exc:
        raise SystemExit(f"loadtests: {exc}") from None
    try:
        sources = load_credentials(options.credentials)
        weights = options.task_weights(sorted({source.provider for source in sources}))
    except FileNotFoundError:
        raise SystemExit(
            f"loadtests: no credentials at {options.credentials}: run "
            "`python -m loadtests.traffic write-config --out DIR` and set "
            "LOADTEST_CREDENTIALS=DIR/credentials.json"
        ) from None
    except (ValueError, KeyError) as exc:
        raise SystemExit(f"loadtests: {options.credentials}: {exc}") from None
    return options, sources, weights


OPTIONS, SOURCES, TASK_WEIGHTS = _load()


def _refresh_clock(**_: Any) -> None:
    """gevent caches the loop's clock; after a slow start-up (imports on a busy machine)
    ``-t/--run-time`` would be counted from that stale time and end the run early."""
    gevent.get_hub().loop.update_now()


def _arguments(parser: Any, **_: Any) -> None:
    """Locust options of this file. A master passes them on to every worker it starts a
    run on, remote ones included (Locust sends its custom options with the spawn message)."""
    parser.add_argument(
        "--loadtest-seed",
        type=int,
        default=None,
        include_in_web_ui=False,
        help="first event seed of the run (each worker takes its own range); "
        "overrides LOADTEST_SEED",
    )
    parser.add_argument(
        "--loadtest-workers-file",
        default="",
        include_in_web_ui=False,
        help="master only: write each worker's identity, requests and CPU here on quitting",
    )


def _listen(hook: Any, listener: Callable[..., Any]) -> None:
    """``hook.add_listener(listener)`` (Locust's ``EventHook`` is untyped)."""
    hook.add_listener(listener)


def _log_workers(environment: Environment, **_: Any) -> None:
    """On a master given ``--loadtest-workers-file``: record what each worker reports
    (``loadtests.worker_figures``) and write it when the master quits."""
    runner = environment.runner
    options = environment.parsed_options
    path = getattr(options, "loadtest_workers_file", "") if options else ""
    if not isinstance(runner, MasterRunner) or not path:
        return
    log = WorkerLog()
    index_of: Callable[[str], int] = runner.get_worker_index

    def on_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
        log.report(client_id, index_of(client_id), data)

    def on_heartbeat(client_id: str, **_: Any) -> None:
        worker = runner.clients.get(client_id)
        if worker is not None:
            log.heartbeat(client_id, index_of(client_id), worker.cpu_usage)

    def on_quitting(**_: Any) -> None:
        log.write(Path(path))

    _listen(environment.events.worker_report, on_report)
    _listen(environment.events.heartbeat_sent, on_heartbeat)
    _listen(environment.events.quitting, on_quitting)


_clock = WorkerClock()


def _start_clock(environment: Environment, **_: Any) -> None:
    """A worker's users start: its CPU figure counts from here."""
    if isinstance(environment.runner, WorkerRunner):
        _clock.start()


def _identify(client_id: str, data: dict[str, Any], **_: Any) -> None:
    """Workers name their host and pid, and their CPU since their users started, in each
    report (the master tells local from remote workers, and sees remote workers' CPU)."""
    _clock.identify(data)


_add_init_listener: Callable[..., Any] = events.init.add_listener
_add_init_listener(_refresh_clock)
_listen(events.init, _log_workers)
_listen(events.init_command_line_parser, _arguments)
_listen(events.report_to_master, _identify)
_listen(events.test_start, _start_clock)
_generators: dict[str, TrafficGenerator] = {}


def _first_seed(environment: Environment) -> int | None:
    """``--loadtest-seed`` (from the master, for every worker of a distributed run), else
    ``LOADTEST_SEED``, else None (random)."""
    seed = getattr(environment.parsed_options, "loadtest_seed", None)
    return OPTIONS.seed if seed is None else int(seed)


def traffic(host: str, environment: Environment) -> TrafficGenerator:
    """This process's generator for ``host``, shared by its users (one seed sequence).

    With a fixed first seed, each Locust worker process starts its own range."""
    generator = _generators.get(host)
    if generator is None:
        seed = _first_seed(environment)
        if seed is not None:
            runner = environment.runner
            worker = runner.worker_index if isinstance(runner, WorkerRunner) else 0
            seed = (seed + worker * SEEDS_PER_WORKER) % SEED_SPACE
        generator = TrafficGenerator(
            [s for s in SOURCES if s.provider in TASK_WEIGHTS],
            base_url=host,
            batch_size=OPTIONS.batch_size,
            duplicate_ratio=OPTIONS.duplicate_ratio,
            bad_signature_ratio=OPTIONS.bad_signature_ratio,
            weights=OPTIONS.event_weights,
            seed_start=seed,
        )
        _generators[host] = generator
    return generator


def _task(provider: str) -> Callable[[WebhookUser], None]:
    def send(user: WebhookUser) -> None:
        user.send(provider)

    send.__name__ = f"send_{provider}"
    return send


class WebhookUser(FastHttpUser):
    """An ESP posting signed webhooks back to back (``LOADTEST_WAIT_SECONDS`` apart).

    ``FastHttpUser`` (geventhttpclient) rather than ``HttpUser`` (requests): it costs the
    generator about half the CPU per request, so Locust saturates later than the gateway."""

    wait_time = constant(OPTIONS.wait_seconds)
    tasks = [task for p, weight in TASK_WEIGHTS.items() for task in [_task(p)] * weight]

    def send(self, provider: str) -> None:
        host = (self.host or "").rstrip("/")
        request = traffic(host, self.environment).next(provider)
        with self.client.post(
            request.path,
            data=request.body,  # type: ignore[arg-type]  # documented "String/bytes", typed str
            headers=dict(request.headers),
            name=request.name,
            catch_response=True,
        ) as response:
            problem = request.check(response.status_code, response.content or b"")
            if problem is None:
                response.success()
            else:
                response.failure(problem)
