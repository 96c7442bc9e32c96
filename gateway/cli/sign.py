"""``hookline sign PROVIDER [FILE]``: a curl command posting a webhook signed as the ESP would.

For trying a source by hand: the body is FILE (or the provider's sample event of ``--event``,
dated now), signed with the source's credentials from the development configuration (or
``--credentials``), and printed as one curl command to paste or pipe to ``sh``. Providers that
sign inside the body (Mailgun, SES) get the re-signed body inline. ``--basic-auth`` prints the
source's ``user:password`` instead, for ``curl -u`` against a basic-auth provider.

Signatures carry the current time: a command older than the source's replay window (24 h by
default) is refused with 401, as the ESP's own would be.
"""

from __future__ import annotations

import argparse
import random
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.cli._client import default_url
from gateway.cli._signing import add_credentials_argument, load_signers
from handlers.events import EventType
from handlers.registry import PROVIDERS

__all__ = ["curl_command", "register", "run"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sign",
        help="print a curl command posting a correctly signed webhook",
        description="Sign FILE (or a sample event) for one source and print the curl command "
        "that posts it. Pipe it to sh to send it.",
    )
    parser.add_argument("provider", choices=PROVIDERS, metavar="PROVIDER")
    parser.add_argument("file", nargs="?", metavar="FILE", help="the body (default: a sample)")
    parser.add_argument(
        "--event",
        default="delivered",
        help="sample event type: a normalized type (delivered, bounced, complained, ...) or "
        "the ESP's own name (default delivered)",
    )
    parser.add_argument("--source", default=None, help="source name (default: the only one)")
    parser.add_argument(
        "--basic-auth",
        action="store_true",
        help="print the source's user:password (for curl -u) instead of a command",
    )
    parser.add_argument("--url", default=default_url(), help="gateway base URL")
    add_credentials_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    signers = [s for s in load_signers(args) if s.provider == args.provider]
    if args.source is not None:
        signers = [s for s in signers if s.spec.name == args.source]
    if len(signers) != 1:
        names = ", ".join(s.spec.name for s in signers) or "none"
        print(
            f"hookline: need exactly one {args.provider} source in the credentials "
            f"(found: {names}; choose one with --source)",
            file=sys.stderr,
        )
        return 2
    signer = signers[0]
    if args.basic_auth:
        if not signer.spec.basic_auth:
            print(f"hookline: {signer.spec.provider} source has no basic auth", file=sys.stderr)
            return 2
        print(signer.spec.basic_auth)
        return 0
    from hookline_testing import samples_for  # the test traffic: not imported by `serve`

    samples = samples_for(args.provider)
    now = datetime.now(UTC)
    if args.file is not None:
        body = Path(args.file).read_bytes()
    else:
        try:
            body = samples.example_body(
                1,
                seed=random.randrange(10**8),
                event=_esp_event(args.provider, args.event),
                now=now,
            )
        except (ValueError, KeyError):
            print(
                f"hookline: no {args.provider} sample for event {args.event!r} (try: "
                f"{', '.join(_sample_events(args.provider))})",
                file=sys.stderr,
            )
            return 2
    url = f"{args.url.rstrip('/')}/webhooks/{args.provider}/{signer.spec.name}"
    request = samples.signed_request(signer.spec, signer.material, body, now=now, url=url)
    same_file = args.file if args.file is not None and request.body == body else None
    print(curl_command(url, dict(request.headers), request.body, same_file))
    return 0


def _esp_event(provider: str, name: str) -> str:
    """The ESP's event name for a normalized type, or ``name`` itself."""
    from hookline_testing import samples_for

    try:
        return samples_for(provider).event_names[EventType(name)]
    except (ValueError, KeyError):
        return name


def _sample_events(provider: str) -> list[str]:
    from hookline_testing import samples_for

    return [event_type.value for event_type in samples_for(provider).event_names]


def curl_command(url: str, headers: dict[str, str], body: bytes, body_file: str | None) -> str:
    """One shell-quoted curl command line posting ``body`` (or ``@body_file``) to ``url``."""
    parts = ["curl", "-sS", url]
    for name, value in headers.items():
        parts += ["-H", f"{name}: {value}"]
    data = f"@{body_file}" if body_file is not None else body.decode("utf-8")
    parts += ["--data-binary", data]
    return " ".join(shlex.quote(part) for part in parts)
