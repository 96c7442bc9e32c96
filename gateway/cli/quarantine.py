"""``hookline quarantine``: list, inspect, replay and discard quarantined records through a
running gateway's admin API (``--url``, ``--token`` / ``$HOOKLINE_ADMIN_TOKEN``).

    hookline quarantine list [--provider sendgrid] [--source main] [--stage store] [--all]
    hookline quarantine show 42
    hookline quarantine replay 42
    hookline quarantine delete 42
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from gateway.cli._client import add_client_arguments, admin_request, list_command

__all__ = ["register"]

_COLUMNS = (
    "id",
    "provider",
    "source",
    "stage",
    "reason",
    "field",
    "received_at",
    "replayed_at",
    "replay_error",
)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "quarantine", help="quarantined records: list, show, replay, delete (via the admin API)"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="list records, newest first")
    listing.add_argument("--provider", default=None, help="only this ESP")
    listing.add_argument("--source", default=None, help="only this source")
    listing.add_argument("--stage", choices=("parse", "store"), default=None)
    listing.add_argument("--limit", type=int, default=50, help="records per page (1-500)")
    listing.add_argument("--cursor", default=None, help="continue from a previous page")
    listing.add_argument("--all", action="store_true", help="follow every page")
    listing.set_defaults(handler=run_list)

    show = actions.add_parser("show", help="one record with its raw item, event and error")
    show.add_argument("id", type=int)
    show.set_defaults(handler=run_show)

    replay = actions.add_parser("replay", help="store a record again once its cause is fixed")
    replay.add_argument("id", type=int)
    replay.set_defaults(handler=run_replay)

    remove = actions.add_parser("delete", help="discard a record")
    remove.add_argument("id", type=int)
    remove.set_defaults(handler=run_delete)

    for action in (listing, show, replay, remove):
        add_client_arguments(action)


def run_list(args: argparse.Namespace) -> int:
    filters = {"provider": args.provider, "source": args.source, "stage": args.stage}
    return list_command(args, "/v1/quarantine", filters, _COLUMNS)


def run_show(args: argparse.Namespace) -> int:
    entry = admin_request(args, "GET", f"/v1/quarantine/{args.id}")
    print(json.dumps(entry, indent=2))
    return 0


def run_replay(args: argparse.Namespace) -> int:
    result = admin_request(args, "POST", f"/v1/quarantine/{args.id}/replay")
    if args.json:
        print(json.dumps(result))
    else:
        print(f"replayed quarantine record {args.id}: {result['new']} new event(s)")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    admin_request(args, "DELETE", f"/v1/quarantine/{args.id}")
    if not args.json:
        print(f"deleted quarantine record {args.id}")
    return 0
