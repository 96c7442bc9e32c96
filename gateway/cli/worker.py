"""``hookline worker``: only the background workers (outbox dispatchers, retention, rollup
compaction, gauges, the spool drainer), with /livez (/healthz), /readyz and /metrics on a
small HTTP port.

A gateway drains its own spool (with or without ``[server] workers``); the worker drains a
spool directory it finds under its data directory only when no running gateway holds it
(``gateway/ingest/spool_lock.py``), e.g. the volume of a gateway that is gone."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.cli._common import add_config_argument, load_or_exit


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "worker", help="run only the background workers (for a separate Deployment)"
    )
    add_config_argument(parser)
    parser.add_argument(
        "--host", default=None, help="health/metrics bind address (default [server] host)"
    )
    parser.add_argument("--port", type=int, default=8001, help="health/metrics port")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.server.deadlines import header_deadline_protocol
    from gateway.worker_app import create_worker_app

    settings = load_or_exit(args)
    app = create_worker_app(settings)
    host = args.host or settings.server.host
    uvicorn.run(
        app,
        host=host,
        port=args.port,
        log_config=None,
        access_log=False,
        http=header_deadline_protocol(settings.server.header_read_timeout_seconds),
        timeout_keep_alive=settings.server.keep_alive_timeout_seconds,  # type: ignore[arg-type]
    )
    return 0
