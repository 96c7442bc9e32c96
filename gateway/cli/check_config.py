"""``hookline check-config``: validate the configuration and print a summary (no secrets)."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.cli._common import add_config_argument, load_or_exit
from observability.redact import redact_url


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "check-config", help="validate the configuration file and exit"
    )
    add_config_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_or_exit(args)
    print(f"config: {settings.origin}: ok")
    print(f"database: {'configured URL' if settings.database.url else 'embedded PostgreSQL'}")
    print(f"data_dir: {settings.data_dir}")
    for source in settings.sources:
        print(f"source: POST /webhooks/{source.provider}/{source.name}")
    for sink in settings.sinks:
        print(f"sink: {sink.name} ({sink.kind}) -> {redact_url(sink.url)}")
    print(f"admin API: {'enabled' if settings.admin.token else 'disabled (no [admin] token)'}")
    return 0
