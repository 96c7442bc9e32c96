"""``hookline message ID``: one message's timeline and each recipient's status."""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import quote

from gateway.cli._client import add_client_arguments, admin_request, print_table
from gateway.cli.events import EVENT_COLUMNS, event_rows

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "message",
        help="show what happened to one message",
        description="A message's events in time order and the furthest state per recipient.",
    )
    parser.add_argument("message_id", metavar="ID", help="the ESP's message id")
    parser.add_argument("--provider", help="only this provider's events")
    parser.add_argument("--raw", action="store_true", help="include the ESP's original events")
    add_client_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    timeline = admin_request(
        args,
        "GET",
        "/v1/messages/" + quote(args.message_id, safe=""),
        params={"provider": args.provider, "include": "raw" if args.raw else None},
    )
    if args.json:
        print(json.dumps(timeline, indent=2))
        return 0
    print(f"message  {timeline['message_id']}  ({', '.join(timeline['providers'])})")
    print()
    print_table(
        [{"recipient": r, "status": s} for r, s in timeline["status"].items()],
        ("recipient", "status"),
    )
    print()
    print_table(event_rows(timeline["events"]), EVENT_COLUMNS)
    if timeline["truncated"]:
        print("(more events than shown: use `hookline events --message-id` to page)")
    return 0
