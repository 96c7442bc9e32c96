"""``hookline demo``: signed, current sample events from every configured source, then a
short summary (one message's timeline, the stats, the suppression list).

Every source in the signing credentials (by default the development configuration that a
zero-config ``hookline serve`` creates: all ten providers) gets one request per event type
its ESP can send, hard bounce and complaint included, signed as the ESP signs and dated now.
One Postmark message (always the same id) is also delivered, opened and clicked, so its
timeline tells a story. Requests are built by the load-test traffic generator, i.e. the
ESPs' samples in ``hookline_testing`` (``example_body`` / ``signed_request``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from gateway.cli._client import add_client_arguments, admin_request
from gateway.cli._signing import add_credentials_argument, load_signers
from handlers.base import WebhookRequest
from handlers.events import EventType
from handlers.registry import get_adapter

if TYPE_CHECKING:
    from loadtests.credentials import LoadSource
    from loadtests.traffic import TrafficRequest

__all__ = ["register", "run"]

#: the message whose timeline the demo shows: Postmark, always the same seed
STORY_PROVIDER = "postmark"
STORY_SEED = 42
STORY_TYPES = (EventType.DELIVERED, EventType.OPENED, EventType.CLICKED)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="send signed sample events from every configured source and summarize",
        description="Sends correctly signed, current sample events (every event type, for "
        "every source in the signing credentials) to a running gateway, then prints one "
        "message's timeline, the stats and the suppression list.",
    )
    add_credentials_argument(parser)
    parser.add_argument(
        "--wait",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long to wait for the gateway to become ready (default 120)",
    )
    add_client_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from loadtests.mix import event_names
    from loadtests.traffic import TrafficGenerator

    signers = load_signers(args)
    _wait_until_ready(args.url, args.wait)
    generator = TrafficGenerator(signers, base_url=args.url)
    requests = [
        generator.fresh(provider, event_type)
        for provider in generator.providers
        for event_type in event_names(provider)
    ]
    story: list[TrafficRequest] = []
    if STORY_PROVIDER in generator.providers:
        story = [generator.fresh(STORY_PROVIDER, t, seed=STORY_SEED) for t in STORY_TYPES]
    failures = _send([*requests, *story])
    events = sum(request.events for request in [*requests, *story])
    print(
        f"sent {len(requests) + len(story)} signed requests ({events} events) to "
        f"{len(generator.providers)} sources: {', '.join(generator.providers)}"
    )
    if failures:
        for failure in failures:
            print(f"  FAILED {failure}", file=sys.stderr)
        return 1
    print("every request acknowledged (HTTP 200)")
    if story:
        message_id = _message_id(story[0], signers)
        _section(f"one message's timeline: hookline message {message_id}")
        _cli(args, "message", message_id)
    _section("stats per provider: hookline stats")
    _cli(args, "stats")
    _section("suppression list: hookline suppressions list")
    _wait_for_suppressions(args)
    _cli(args, "suppressions", "list", "--limit", "10")
    print()
    print(f"next: curl -s {args.url.rstrip('/')}/metrics | grep hookline_events")
    return 0


def _wait_until_ready(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url.rstrip("/") + "/readyz", timeout=5.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() >= deadline:
            print(
                f"hookline: the gateway at {url} is not ready after {seconds:.0f} s"
                " (is `make run` running? --url / HOOKLINE_PORT must match it)",
                file=sys.stderr,
            )
            raise SystemExit(1)
        time.sleep(0.5)


def _send(requests: Sequence[TrafficRequest]) -> list[str]:
    """Post each request; what went wrong, one line per failed request."""
    failures = []
    with httpx.Client(timeout=30.0) as client:
        for request in requests:
            try:
                response = client.post(request.url, content=request.body, headers=request.headers)
            except httpx.HTTPError as exc:
                failures.append(f"{request.provider} {request.event_type.value}: {exc}")
                continue
            problem = request.check(response.status_code, response.content)
            if problem is not None:
                failures.append(f"{request.provider} {request.event_type.value}: {problem}")
    return failures


def _message_id(request: TrafficRequest, signers: Sequence[LoadSource]) -> str:
    """The message id the gateway stores for ``request``, read by the provider's adapter."""
    spec = next(s.spec for s in signers if s.provider == request.provider)
    webhook = WebhookRequest("POST", request.url, request.headers, request.body)
    events = get_adapter(request.provider).parse(webhook, spec, datetime.now(UTC)).events
    return str(events[0].message_id)


def _wait_for_suppressions(args: argparse.Namespace, seconds: float = 15.0) -> None:
    """Suppressions are applied by the outbox workers just after ingest: give them a moment."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        page = admin_request(args, "GET", "/v1/suppressions", params={"limit": 1})
        if page["items"]:
            return
        time.sleep(0.5)


def _section(title: str) -> None:
    print()
    print(f"== {title}")


def _cli(args: argparse.Namespace, *argv: str) -> None:
    """Run another sub-command with this one's --url and --token."""
    from gateway.cli import build_parser

    extra = ["--url", args.url] + (["--token", args.token] if args.token else [])
    sub = build_parser().parse_args([*argv, *extra])
    sub.handler(sub)
