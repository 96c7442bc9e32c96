"""``hookline events``: search stored events on a running gateway (``GET /v1/events``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gateway.cli._client import add_client_arguments, admin_request, print_table

__all__ = ["EVENT_COLUMNS", "event_rows", "register", "run"]

EVENT_COLUMNS = (
    "occurred_at",
    "event_type",
    "provider",
    "recipient",
    "message_id",
    "campaign",
    "detail",
)


def event_rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Table rows for events: ``detail`` is the bounce class and reason, or the URL."""
    rows = []
    for event in events:
        detail = event.get("url") or event.get("reason") or event.get("smtp_status") or ""
        if event.get("bounce_class"):
            detail = f"[{event['bounce_class']}] {detail}".strip()
        if event.get("machine_open"):
            detail = f"[machine] {detail}".strip()
        rows.append({**event, "detail": detail})
    return rows


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "events",
        help="search stored events (newest first)",
        description="Search stored events on a running gateway. Filters combine with AND.",
    )
    parser.add_argument("--recipient", help="recipient address (case-insensitive)")
    parser.add_argument("--message-id", help="the ESP's message id")
    parser.add_argument("--provider", help="provider(s), comma-separated")
    parser.add_argument("--source", help="source name")
    parser.add_argument("--event-type", help="event type(s), comma-separated")
    parser.add_argument("--campaign")
    parser.add_argument("--tag", action="append", help="repeatable; all must match")
    parser.add_argument(
        "--metadata", action="append", metavar="KEY:VALUE", help="repeatable; all must match"
    )
    parser.add_argument("--since", help="ISO 8601 date/time or relative (7d, 12h)")
    parser.add_argument("--until", help="ISO 8601 date/time or relative (7d, 12h)")
    parser.add_argument("--limit", type=int, default=50, help="events per page (max 1000)")
    parser.add_argument("--cursor", help="continue from a previous page's next_cursor")
    parser.add_argument(
        "--pages", type=int, default=1, help="follow next_cursor for up to this many pages"
    )
    parser.add_argument("--raw", action="store_true", help="include the ESP's original event")
    add_client_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {
        "recipient": args.recipient,
        "message_id": args.message_id,
        "provider": args.provider,
        "source": args.source,
        "event_type": args.event_type,
        "campaign": args.campaign,
        "tag": args.tag,
        "metadata": args.metadata,
        "since": args.since,
        "until": args.until,
        "limit": args.limit,
        "cursor": args.cursor,
        "include": "raw" if args.raw else None,
    }
    items: list[dict[str, Any]] = []
    cursor = args.cursor
    for _ in range(max(1, args.pages)):
        page = admin_request(args, "GET", "/v1/events", params={**params, "cursor": cursor})
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    if args.json:
        print(json.dumps({"items": items, "next_cursor": cursor}, indent=2))
        return 0
    if not items:
        print("no events match")
        return 0
    print_table(event_rows(items), EVENT_COLUMNS)
    if cursor is not None:
        print(f"more: --cursor {cursor}", file=sys.stderr)
    return 0
