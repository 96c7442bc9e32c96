"""Helpers shared by sub-commands: loading settings with operator-friendly errors."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.settings import ConfigError, Settings, load_settings
from observability.redact import redact_text

__all__ = ["add_config_argument", "load_or_exit"]


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=None,
        help="TOML config file (default: $HOOKLINE_CONFIG; none: zero-config defaults)",
    )


def load_or_exit(args: argparse.Namespace, path: Path | None = None) -> Settings:
    """The settings (from ``path`` when given, else ``--config``), or exit 2 with a clear
    message (never a traceback)."""
    try:
        return load_settings(path if path is not None else args.config)
    except ConfigError as exc:
        # an error may quote a value (a URL): never print its credentials
        message = redact_text(str(exc), mask=False)
        print(f"hookline: configuration error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
