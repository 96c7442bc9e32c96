"""A small HTTP client for admin sub-commands that talk to a running gateway's /v1 API.

``--url`` (default ``$HOOKLINE_URL``, else the address ``hookline serve`` listens on:
``$HOOKLINE_HOST``/``$HOOKLINE_PORT``, 127.0.0.1:8000) and ``--token`` (default
``$HOOKLINE_ADMIN_TOKEN``, else the development configuration's token when there is one).
Errors print the server's problem+json detail and exit 1; no token at all exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from gateway.devconfig import DevConfig, data_dir_from_env
from gateway.settings import ServerSettings

__all__ = ["add_client_arguments", "admin_request", "default_token", "default_url", "print_table"]


def default_url(environ: Mapping[str, str] | None = None) -> str:
    """``$HOOKLINE_URL``, else where ``hookline serve`` listens with the same environment."""
    environ = os.environ if environ is None else environ
    if environ.get("HOOKLINE_URL"):
        return environ["HOOKLINE_URL"]
    defaults = ServerSettings()
    host = environ.get("HOOKLINE_HOST") or defaults.host
    if host in ("0.0.0.0", "::"):  # noqa: S104 - a wildcard bind is reached on loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{environ.get('HOOKLINE_PORT') or defaults.port}"


def default_token(environ: Mapping[str, str] | None = None) -> str | None:
    """``$HOOKLINE_ADMIN_TOKEN``, else the token of the development configuration that
    ``hookline serve`` created in the data directory, unless ``$HOOKLINE_CONFIG`` or
    ``$HOOKLINE_DATABASE_URL`` says the gateway does not run on it."""
    environ = os.environ if environ is None else environ
    if environ.get("HOOKLINE_ADMIN_TOKEN"):
        return environ["HOOKLINE_ADMIN_TOKEN"]
    if environ.get("HOOKLINE_CONFIG") or environ.get("HOOKLINE_DATABASE_URL"):
        return None
    return DevConfig.under(data_dir_from_env(environ)).admin_token()


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=default_url(),
        help="gateway base URL (default $HOOKLINE_URL, else http://$HOOKLINE_HOST:$HOOKLINE_PORT,"
        " 127.0.0.1:8000 when unset)",
    )
    parser.add_argument(
        "--token",
        default=None,
        help="admin token (default $HOOKLINE_ADMIN_TOKEN, else the development configuration's)",
    )
    parser.add_argument("--json", action="store_true", help="print raw JSON")


def admin_request(
    args: argparse.Namespace,
    method: str,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    body: Any = None,
) -> Any:
    """Call the admin API; return decoded JSON (None for 204). Exit 1 on an error status."""
    token = args.token or default_token()
    if not token:
        print(
            "hookline: no admin token: pass --token or set HOOKLINE_ADMIN_TOKEN (the gateway's"
            " [admin] token); a gateway started with no configuration (make run) writes one to"
            f" {DevConfig.under(data_dir_from_env()).config}, which this command reads",
            file=sys.stderr,
        )
        raise SystemExit(2)
    clean = {k: v for k, v in (params or {}).items() if v is not None}
    try:
        response = httpx.request(
            method,
            args.url.rstrip("/") + path,
            params=clean,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30.0,
        )
    except httpx.HTTPError as exc:
        print(f"hookline: cannot reach {args.url}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    if response.status_code >= 400:
        try:
            problem = response.json()
            detail = problem.get("detail") or problem.get("title")
        except ValueError:
            detail = response.text
        print(f"hookline: {response.status_code}: {detail}", file=sys.stderr)
        raise SystemExit(1)
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """A plain aligned table; values longer than 60 characters are shortened."""

    def cell(value: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        text = "" if value is None else text
        return text if len(text) <= 60 else text[:57] + "..."

    cells = [[cell(row.get(col)) for col in columns] for row in rows]
    widths = [max([len(col), *(len(r[i]) for r in cells)]) for i, col in enumerate(columns)]
    print("  ".join(col.upper().ljust(widths[i]) for i, col in enumerate(columns)).rstrip())
    for r in cells:
        print("  ".join(r[i].ljust(widths[i]) for i in range(len(columns))).rstrip())


def list_command(
    args: argparse.Namespace, path: str, filters: Mapping[str, Any], columns: Sequence[str]
) -> int:
    """A list sub-command: one page (or every page with ``--all``), as a table or JSON."""
    cursor = args.cursor
    items: list[dict[str, Any]] = []
    while True:
        page = admin_request(
            args, "GET", path, params={**filters, "limit": args.limit, "cursor": cursor}
        )
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not args.all or cursor is None:
            break
    if args.json:
        print(json.dumps({"items": items, "next_cursor": cursor}, indent=2))
        return 0
    print_table(items, columns)
    if cursor is not None:
        print(f"more: --cursor {cursor}")
    return 0
