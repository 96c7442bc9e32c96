"""What ``hookline demo`` and ``hookline sign`` share: the signing credentials of the
development configuration (or any load-test credentials file), loaded with clear errors.

The signing itself is the ESPs' samples in ``hookline_testing`` (shipped with the gateway),
and the credentials file format is ``loadtests``' (the same code the tests and load tests
use); that package is part of a source checkout, not of a wheel.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.devconfig import DevConfig, data_dir_from_env

if TYPE_CHECKING:
    from loadtests.credentials import LoadSource

__all__ = ["add_credentials_argument", "load_signers"]


def add_credentials_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--credentials",
        metavar="PATH",
        default=None,
        help="signing credentials (default: the development configuration's credentials.json"
        " in $HOOKLINE_DATA_DIR or .hookline)",
    )


def load_signers(args: argparse.Namespace) -> list[LoadSource]:
    """The sources and their signing material, or exit 2 saying what is missing."""
    try:
        from loadtests.credentials import load_credentials
    except ImportError:
        print("hookline: signing needs the loadtests package (a source checkout)", file=sys.stderr)
        raise SystemExit(2) from None
    path = Path(args.credentials or DevConfig.under(data_dir_from_env()).credentials)
    if not path.is_file():
        print(
            f"hookline: no signing credentials at {path}: start the gateway with no configuration"
            " (make run) to create them, or pass --credentials",
            file=sys.stderr,
        )
        raise SystemExit(2)
    try:
        return load_credentials(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"hookline: cannot read signing credentials {path}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
