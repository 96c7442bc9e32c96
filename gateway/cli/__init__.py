"""``hookline``: the command line. Each sub-command lives in its own module with a
``register(subparsers)`` function; ``COMMANDS`` lists them in help order."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

COMMANDS: tuple[str, ...] = (
    "serve",
    "worker",
    "migrate",
    "check_config",
    "events",
    "message",
    "recipient",
    "stats",
    "dlq",
    "suppressions",
    "quarantine",
    "demo",
    "sign",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hookline",
        description="Hookline: a gateway for email-event webhooks.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"gateway.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
