"""``hookline suppressions``: look up and manage the suppression list through a running
gateway's admin API (``--url``, ``--token`` / ``$HOOKLINE_ADMIN_TOKEN``).

    hookline suppressions list [--reason hard_bounce] [--limit 50] [--cursor C] [--all]
    hookline suppressions get someone@example.com
    hookline suppressions add someone@example.com [--note "asked by phone"]
    hookline suppressions remove someone@example.com
"""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import quote

from gateway.cli._client import add_client_arguments, admin_request, list_command

__all__ = ["register"]

_COLUMNS = ("address", "reason", "created_at", "expires_at", "dedup_key", "note")
_REASONS = ("hard_bounce", "complaint", "unsubscribe", "soft_bounce", "manual")


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "suppressions", help="suppression list: list, get, add, remove (via the admin API)"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="list suppressed addresses")
    listing.add_argument("--reason", choices=_REASONS, default=None)
    listing.add_argument("--limit", type=int, default=50, help="entries per page (1-500)")
    listing.add_argument("--cursor", default=None, help="continue from a previous page")
    listing.add_argument("--all", action="store_true", help="follow every page")
    listing.set_defaults(handler=run_list)

    lookup = actions.add_parser("get", help="is this address suppressed, and why")
    lookup.add_argument("address")
    lookup.set_defaults(handler=run_get)

    add = actions.add_parser("add", help="suppress an address manually")
    add.add_argument("address")
    add.add_argument("--note", default=None, help="why (kept with the entry)")
    add.set_defaults(handler=run_add)

    remove = actions.add_parser("remove", help="take an address off the list")
    remove.add_argument("address")
    remove.set_defaults(handler=run_remove)

    for action in (listing, lookup, add, remove):
        add_client_arguments(action)


def _path(address: str) -> str:
    return "/v1/suppressions/" + quote(address, safe="@")


def run_list(args: argparse.Namespace) -> int:
    return list_command(args, "/v1/suppressions", {"reason": args.reason}, _COLUMNS)


def run_get(args: argparse.Namespace) -> int:
    entry = admin_request(args, "GET", _path(args.address))
    print(json.dumps(entry, indent=2))
    return 0


def run_add(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"address": args.address}
    if args.note is not None:
        body["note"] = args.note
    entry = admin_request(args, "POST", "/v1/suppressions", body=body)
    if args.json:
        print(json.dumps(entry))
    elif entry["reason"] == "manual":
        print(f"suppressed {entry['address']}")
    else:
        print(f"{entry['address']} is already suppressed ({entry['reason']})")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    admin_request(args, "DELETE", _path(args.address))
    if not args.json:
        print(f"removed {args.address} from the suppression list")
    return 0
