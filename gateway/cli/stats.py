"""``hookline stats``: deliverability KPIs per provider, source, campaign, tag, day or hour."""

from __future__ import annotations

import argparse
import json
from typing import Any

from gateway.cli._client import add_client_arguments, admin_request, print_table

__all__ = ["register", "run", "stats_rows"]

_COLUMNS = (
    "key",
    "delivered",
    "bounced",
    "opens",
    "clicks",
    "complaints",
    "delivery",
    "open",
    "open+machine",
    "click",
    "ctor",
    "hard",
    "soft",
    "complaint",
    "unsub",
)
_RATES = {
    "delivery": "delivery_rate",
    "open": "unique_open_rate",
    "open+machine": "unique_open_rate_with_machine",
    "click": "click_rate",
    "ctor": "click_to_open_rate",
    "hard": "hard_bounce_rate",
    "soft": "soft_bounce_rate",
    "complaint": "complaint_rate",
    "unsub": "unsubscribe_rate",
}


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.2f}%"


def stats_rows(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One table row per group: headline counts (unique opens and clicks) and rates."""
    rows = []
    for group in groups:
        counts, details, rates = group["counts"], group["details"], group["rates"]
        row: dict[str, Any] = {
            "key": group["key"] if group["key"] is not None else "(none)",
            "delivered": counts.get("delivered", 0),
            "bounced": counts.get("bounced", 0),
            "opens": details["unique_human_opens"],
            "clicks": details["unique_clicks"],
            "complaints": counts.get("complained", 0),
        }
        row.update({column: _percent(rates[name]) for column, name in _RATES.items()})
        rows.append(row)
    return rows


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "stats",
        help="deliverability KPIs from the hourly rollups",
        description="Counts and rates (unique human opens and clicks; see docs/admin-api.md for "
        "each rate's definition), grouped one way, over [since, until).",
    )
    parser.add_argument(
        "--group-by",
        default="provider",
        choices=("provider", "source", "campaign", "tag", "day", "hour"),
    )
    parser.add_argument("--since", help="default 30d; ISO 8601 date/time or relative (7d)")
    parser.add_argument("--until", help="default now")
    parser.add_argument("--provider")
    parser.add_argument("--source")
    parser.add_argument("--campaign")
    parser.add_argument("--tag")
    parser.add_argument("--limit", type=int, default=None, help="at most this many groups")
    add_client_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    report = admin_request(
        args,
        "GET",
        "/v1/stats",
        params={
            "group_by": args.group_by,
            "since": args.since,
            "until": args.until,
            "provider": args.provider,
            "source": args.source,
            "campaign": args.campaign,
            "tag": args.tag,
            "limit": args.limit,
        },
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['group_by']} from {report['since']} to {report['until']}")
    if not report["groups"]:
        print("no events in this window")
        return 0
    print_table(stats_rows(report["groups"]), _COLUMNS)
    return 0
