"""``hookline serve``: the gateway (webhooks, admin API, metrics) and, by default, the workers."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from gateway import devconfig
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
    from gateway.cli._stopping_server import StoppingServer
    from gateway.server.deadlines import header_deadline_protocol

    settings = load_or_exit(args)
    dev, dev_created = None, False
    if devconfig.applies(settings):
        dev = devconfig.DevConfig.under(settings.data_dir)
        try:
            dev_created = devconfig.ensure(dev)
        except ImportError:  # an install without the signing helpers: bare defaults
            dev = None
        else:
            settings = load_or_exit(args, dev.config)
    server = settings.server
    if args.host or args.port or args.no_workers:
        server = msgspec.structs.replace(
            server,
            host=args.host or server.host,
            port=args.port or server.port,
            workers=server.workers and not args.no_workers,
        )
        settings = msgspec.structs.replace(settings, server=server)
    if dev is not None:
        print(devconfig.banner(dev, settings, created=dev_created), flush=True)
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
    config["http"] = header_deadline_protocol(server.header_read_timeout_seconds)
    config["timeout_keep_alive"] = server.keep_alive_timeout_seconds
    # uvicorn shuts down gracefully on SIGTERM (stop accepting, finish requests, drain the
    # spool in the lifespan), then raises the signal again for the handler it found: let that
    # be a no-op, so that a completed graceful shutdown exits 0 rather than by the signal
    signal.signal(signal.SIGTERM, lambda *_: None)
    http = StoppingServer(uvicorn.Config(app, **config), app, server.shutdown_delay_seconds)
    try:
        http.run()
    except EmbeddedPostgresError as exc:
        print(f"hookline: embedded PostgreSQL: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0 if http.started else 3  # 3: uvicorn's "application startup failed"
