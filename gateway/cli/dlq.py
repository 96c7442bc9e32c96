"""``hookline dlq``: list, inspect, replay and discard dead-lettered deliveries through a
running gateway's admin API (``--url``, ``--token`` / ``$HOOKLINE_ADMIN_TOKEN``).

    hookline dlq list [--sink crm] [--limit 50] [--cursor C] [--all]
    hookline dlq show 42
    hookline dlq replay 42
    hookline dlq replay-all --sink crm [--since 2024-05-01T00:00:00Z] [--until ...] [--wait]
    hookline dlq delete 42
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from gateway.cli._client import add_client_arguments, admin_request, list_command

__all__ = ["register"]

_COLUMNS = (
    "id",
    "sink",
    "event_type",
    "reason",
    "attempts",
    "last_status",
    "dead_at",
    "last_error",
)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "dlq", help="dead-letter queue: list, show, replay, delete (via the admin API)"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="list entries, newest first")
    listing.add_argument("--sink", default=None, help="only this sink")
    listing.add_argument("--limit", type=int, default=50, help="entries per page (1-500)")
    listing.add_argument("--cursor", default=None, help="continue from a previous page")
    listing.add_argument("--all", action="store_true", help="follow every page")
    listing.set_defaults(handler=run_list)

    show = actions.add_parser("show", help="one entry with its attempt history and event")
    show.add_argument("id", type=int)
    show.set_defaults(handler=run_show)

    replay = actions.add_parser("replay", help="deliver one entry again")
    replay.add_argument("id", type=int)
    replay.set_defaults(handler=run_replay)

    bulk = actions.add_parser(
        "replay-all", help="deliver again every entry of a sink (optionally in a time range)"
    )
    bulk.add_argument("--sink", required=True)
    bulk.add_argument("--since", default=None, help="dead-lettered at or after (ISO 8601)")
    bulk.add_argument("--until", default=None, help="dead-lettered before (ISO 8601)")
    bulk.add_argument("--wait", action="store_true", help="wait until the replay is done")
    bulk.set_defaults(handler=run_replay_all)

    remove = actions.add_parser("delete", help="discard an entry")
    remove.add_argument("id", type=int)
    remove.set_defaults(handler=run_delete)

    for action in (listing, show, replay, bulk, remove):
        add_client_arguments(action)


def run_list(args: argparse.Namespace) -> int:
    return list_command(args, "/v1/dlq", {"sink": args.sink}, _COLUMNS)


def run_show(args: argparse.Namespace) -> int:
    entry = admin_request(args, "GET", f"/v1/dlq/{args.id}")
    print(json.dumps(entry, indent=2))
    return 0


def run_replay(args: argparse.Namespace) -> int:
    result = admin_request(args, "POST", f"/v1/dlq/{args.id}/replay")
    print(json.dumps(result) if args.json else f"replayed DLQ entry {args.id}")
    return 0


def run_replay_all(args: argparse.Namespace) -> int:
    body = {"sink": args.sink, "since": args.since, "until": args.until}
    job = admin_request(
        args, "POST", "/v1/dlq/replay", body={k: v for k, v in body.items() if v is not None}
    )
    while args.wait and job["status"] == "running":
        time.sleep(0.5)
        job = admin_request(args, "GET", f"/v1/dlq/replay/{job['job_id']}")
    if args.json:
        print(json.dumps(job))
    elif job["status"] == "running":
        print(f"replaying {job['matched']} entries of {job['sink']} (job {job['job_id']})")
    else:
        print(f"replay {job['status']}: {job['replayed']} of {job['matched']} entries")
    return 0 if job["status"] != "failed" else 1


def run_delete(args: argparse.Namespace) -> int:
    admin_request(args, "DELETE", f"/v1/dlq/{args.id}")
    if not args.json:
        print(f"deleted DLQ entry {args.id}")
    return 0
