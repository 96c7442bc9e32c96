"""``hookline recipient ADDRESS``: one address's history, or ``--inactive-days N``: the
recipients who have gone quiet."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from urllib.parse import quote

from gateway.cli._client import add_client_arguments, admin_request, print_table
from gateway.cli.events import EVENT_COLUMNS, event_rows

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "recipient",
        help="show one recipient's history, or list inactive recipients",
        description="With ADDRESS: latest events, counts per type and suppression status. "
        "With --inactive-days N: recipients delivered to at least N days ago with no human "
        "open or click since.",
    )
    parser.add_argument("address", metavar="ADDRESS", nargs="?", help="recipient address")
    parser.add_argument("--inactive-days", type=int, metavar="N")
    parser.add_argument("--limit", type=int, default=None, help="events / recipients to show")
    parser.add_argument("--cursor", help="continue an inactive list from its next_cursor")
    add_client_arguments(parser)
    parser.set_defaults(handler=run)


def _inactive(args: argparse.Namespace) -> int:
    page = admin_request(
        args,
        "GET",
        "/v1/recipients",
        params={"inactive_days": args.inactive_days, "limit": args.limit, "cursor": args.cursor},
    )
    if args.json:
        print(json.dumps(page, indent=2))
        return 0
    if not page["items"]:
        print("no inactive recipients")
        return 0
    print_table(
        page["items"], ("address", "first_delivered_on", "last_delivered_on", "last_engaged_on")
    )
    if page["next_cursor"] is not None:
        print(f"more: --cursor {page['next_cursor']}", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    if (args.address is None) == (args.inactive_days is None):
        print("hookline: give either ADDRESS or --inactive-days N", file=sys.stderr)
        return 2
    if args.inactive_days is not None:
        return _inactive(args)
    history = admin_request(
        args,
        "GET",
        "/v1/recipients/" + quote(args.address, safe="@+"),
        params={"limit": args.limit},
    )
    if args.json:
        print(json.dumps(history, indent=2))
        return 0
    suppression = history["suppression"] or {}
    state = "suppressed" if history["suppressed"] else "not suppressed"
    if suppression.get("reason"):
        state += f" ({suppression['reason']})"
    print(f"recipient  {history['address']}  {state}")
    activity = history["activity"] or {}
    if activity:
        print(
            f"last delivered {activity.get('last_delivered_on') or '-'}, "
            f"last engaged {activity.get('last_engaged_on') or '-'}"
        )
    counts = ", ".join(f"{k} {v}" for k, v in history["counts"].items()) or "no events"
    print(f"events     {counts}")
    if history["events"]:
        print()
        print_table(event_rows(history["events"]), EVENT_COLUMNS)
    return 0
