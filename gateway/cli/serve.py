"""``hookline serve``: the gateway (webhooks, admin API, metrics) and, by default, the workers."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gateway.cli._common import add_config_argument, load_or_exit
from gateway.storage.embedded import EmbeddedPostgresError


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="run the gateway (HTTP) and, unless disabled, the background workers"
    )
    add_config_argument(parser)
    parser.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default 8000)")
    parser.add_argument(
        "--no-workers", action="store_true", help="do not run outbox workers in this process"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import msgspec
    import uvicorn

    from gateway.app import create_app

    settings = load_or_exit(args)
    server = settings.server
    if args.host or args.port or args.no_workers:
        server = msgspec.structs.replace(
            server,
            host=args.host or server.host,
            port=args.port or server.port,
            workers=server.workers and not args.no_workers,
        )
        settings = msgspec.structs.replace(settings, server=server)
    app = create_app(settings)
    config: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": 20,
        "server_header": False,
        # forwarded headers are judged by the gateway against [server] forwarded_allow_ips
        # (gateway.proxies), on the real peer: uvicorn must not rewrite scope["client"]
        "proxy_headers": False,
        "forwarded_allow_ips": server.forwarded_allow_ips,
    }
    try:
        uvicorn.run(app, **config)
    except EmbeddedPostgresError as exc:
        print(f"hookline: embedded PostgreSQL: {exc}", file=sys.stderr)
        return 1
    return 0
