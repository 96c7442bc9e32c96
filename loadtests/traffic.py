"""Signed webhook traffic for load tests, and the ``write-config`` command that sets it up.

Framework-free: ``TrafficGenerator`` yields ``TrafficRequest``s (method, URL, headers, body)
signed exactly as each ESP signs them, using the ESPs' samples in ``hookline_testing``
(``example_body`` / ``signed_request``). Any HTTP client can send them; the Locust file in
this package is one.

* fresh requests carry events never sent before (each request takes a new seed);
* duplicates redeliver a recent body, re-signed now, as an ESP retry does;
* bad-signature requests are signed with credentials the gateway does not know (401).

Command line::

    python -m loadtests.traffic write-config --out /tmp/lt   # hookline.toml + credentials.json
    python -m loadtests.traffic sample --credentials /tmp/lt/credentials.json --count 3
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from handlers.base import WebhookRequest
from handlers.events import EventType
from handlers.registry import available_providers
from hookline_testing import Samples, samples_for
from loadtests.credentials import (
    LoadSource,
    load_credentials,
    make_sources,
    write_run_files,
)
from loadtests.mix import DEFAULT_WEIGHTS, EventMix, event_names, events_per_request

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_OUT",
    "SEEDS_PER_WORKER",
    "SEED_SPACE",
    "RequestKind",
    "TrafficGenerator",
    "TrafficRequest",
    "main",
]

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_OUT = Path(tempfile.gettempdir()) / "hookline-loadtest"
#: seeds stay below this: some example bodies derive timestamps from the seed, and every
#: provider's still parses at the top of the range
SEED_SPACE = 100_000_000
#: seeds reserved per Locust worker process when LOADTEST_SEED is fixed (the worker's range)
SEEDS_PER_WORKER = 1_000_000
#: seeds one process may use before wrapping (far beyond any bounded run)
_SEEDS_PER_RUN = 10_000_000

RequestKind = Literal["fresh", "duplicate", "bad_signature"]


@dataclass(frozen=True, slots=True)
class TrafficRequest:
    """One signed webhook POST and what the gateway should answer."""

    provider: str
    source: str
    kind: RequestKind
    event_type: EventType
    #: events the body carries (the gateway's ``accepted`` on a 200)
    events: int
    url: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def expected_status(self) -> int:
        return 401 if self.kind == "bad_signature" else 200

    @property
    def name(self) -> str:
        """A bounded label for statistics: provider, plus the kind when not fresh."""
        return self.provider if self.kind == "fresh" else f"{self.provider} {self.kind}"

    def check(self, status: int, body: bytes) -> str | None:
        """Why the gateway's answer is wrong for this request, or None when it is right.

        A 200 must acknowledge every event (``accepted``); whether they were duplicates is
        not checked, because concurrent users may redeliver a body before its first send.
        """
        if status != self.expected_status:
            return f"expected HTTP {self.expected_status}, got {status}: {body[:200]!r}"
        if status != 200:
            return None
        try:
            ack = json.loads(body)
        except ValueError:
            return f"200 without a JSON acknowledgement: {body[:200]!r}"
        if not isinstance(ack, dict) or ack.get("accepted") != self.events:
            return f"acknowledged {ack!r}, expected accepted={self.events}"
        return None


@dataclass(frozen=True, slots=True)
class _Sent:
    source: LoadSource
    event_type: EventType
    events: int
    body: bytes


class TrafficGenerator:
    """Signed requests for ``sources``: unique events mixed by weight, plus optional
    redeliveries (``duplicate_ratio``) and forgeries (``bad_signature_ratio``).

    ``seed_start`` fixes where the event seeds begin (default: random, so separate runs
    against one database do not collide); ``rng`` and ``clock`` make the output
    reproducible in tests.
    """

    def __init__(
        self,
        sources: Sequence[LoadSource],
        *,
        base_url: str = DEFAULT_BASE_URL,
        batch_size: int = 1,
        duplicate_ratio: float = 0.0,
        bad_signature_ratio: float = 0.0,
        weights: Mapping[EventType, float] = DEFAULT_WEIGHTS,
        seed_start: int | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] | None = None,
        memory: int = 256,
    ) -> None:
        if not sources:
            raise ValueError("no sources to send traffic to")
        for label, ratio in (
            ("duplicate", duplicate_ratio),
            ("bad signature", bad_signature_ratio),
        ):
            if not 0.0 <= ratio <= 1.0:
                raise ValueError(f"{label} ratio must be between 0 and 1, not {ratio}")
        if duplicate_ratio + bad_signature_ratio > 1.0:
            raise ValueError("duplicate and bad-signature ratios add up to more than 1")
        self.base_url = base_url.rstrip("/")
        self.batch_size = batch_size
        self.duplicate_ratio = duplicate_ratio
        self.bad_signature_ratio = bad_signature_ratio
        self._rng = rng or random.Random()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._sources: dict[str, list[LoadSource]] = {}
        for source in sources:
            self._sources.setdefault(source.provider, []).append(source)
        self._samples: dict[str, Samples] = {p: samples_for(p) for p in self._sources}
        self._mixes = {
            provider: EventMix.for_provider(provider, weights) for provider in self._sources
        }
        for provider in self._sources:
            events_per_request(provider, batch_size)  # validates the batch size
        if seed_start is None:
            seed_start = random.SystemRandom().randrange(SEED_SPACE - _SEEDS_PER_RUN)
        if not 0 <= seed_start < SEED_SPACE:
            raise ValueError(f"seed_start must be in [0, {SEED_SPACE})")
        self._seed_start = seed_start
        self._seeds = itertools.count()
        self._recent: dict[str, deque[_Sent]] = {p: deque(maxlen=memory) for p in self._sources}
        self._forgers: dict[tuple[str, str], LoadSource] = {}

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(self._sources)

    def next(self, provider: str | None = None) -> TrafficRequest:
        """The next request, for ``provider`` or a provider chosen uniformly."""
        if provider is None:
            provider = self._rng.choice(self.providers)
        elif provider not in self._sources:
            raise KeyError(f"no source for provider {provider!r}")
        roll = self._rng.random()
        if roll < self.bad_signature_ratio:
            return self._bad_signature(provider)
        recent = self._recent[provider]
        if roll < self.bad_signature_ratio + self.duplicate_ratio and recent:
            sent = recent[self._rng.randrange(len(recent))]
            return self._sign("duplicate", sent, sent.source)
        sent = self._new_body(provider)
        recent.append(sent)
        return self._sign("fresh", sent, sent.source)

    def fresh(
        self, provider: str, event_type: EventType, *, seed: int | None = None
    ) -> TrafficRequest:
        """A fresh request for ``provider`` carrying events of ``event_type`` (for a demo that
        shows every type once); ``KeyError`` if the provider cannot express that type.
        ``seed`` fixes the body's identifiers (message id, recipient) instead of a new one."""
        sources = self._sources[provider]
        esp_event = event_names(provider)[event_type]
        sent = self._body(self._rng.choice(sources), event_type, esp_event, seed)
        self._recent[provider].append(sent)
        return self._sign("fresh", sent, sent.source)

    def take(self, count: int, provider: str | None = None) -> Iterator[TrafficRequest]:
        """Exactly ``count`` requests (a bounded stream)."""
        for _ in range(count):
            yield self.next(provider)

    # -- internals ----------------------------------------------------------------------------
    def _seed(self) -> int:
        return (self._seed_start + next(self._seeds)) % SEED_SPACE

    def _new_body(self, provider: str) -> _Sent:
        source = self._rng.choice(self._sources[provider])
        event_type, esp_event = self._mixes[provider].pick(self._rng)
        return self._body(source, event_type, esp_event)

    def _body(
        self, source: LoadSource, event_type: EventType, esp_event: str, seed: int | None = None
    ) -> _Sent:
        provider = source.provider
        count = events_per_request(provider, self.batch_size)
        # dated now, as the ESP would send it: event times the gateway's delay metrics and
        # the CLI's ``--since`` windows see as current
        body = self._samples[provider].example_body(
            count,
            seed=self._seed() if seed is None else seed,
            event=esp_event,
            now=self._clock(),
        )
        return _Sent(source, event_type, count, body)

    def _bad_signature(self, provider: str) -> TrafficRequest:
        sent = self._new_body(provider)
        key = (provider, sent.source.spec.name)
        forger = self._forgers.get(key)
        if forger is None:
            # same provider and name, credentials the gateway has never seen
            forger = make_sources([provider], sent.source.spec.name)[0]
            self._forgers[key] = forger
        return self._sign("bad_signature", sent, forger)

    def _sign(self, kind: RequestKind, sent: _Sent, signer: LoadSource) -> TrafficRequest:
        path = sent.source.path
        url = self.base_url + path
        request: WebhookRequest = self._samples[sent.source.provider].signed_request(
            signer.spec, signer.material, sent.body, now=self._clock(), url=url
        )
        return TrafficRequest(
            provider=sent.source.provider,
            source=sent.source.spec.name,
            kind=kind,
            event_type=sent.event_type,
            events=sent.events,
            url=url,
            path=path,
            headers=dict(request.headers),
            body=request.body,
        )


# -- command line ---------------------------------------------------------------------------
def _providers_arg(text: str | None) -> list[str]:
    available = available_providers()
    if not text:
        return list(available)
    wanted = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in wanted if p not in available]
    if unknown:
        raise SystemExit(
            f"unknown or unavailable provider(s): {', '.join(unknown)} "
            f"(available: {', '.join(available)})"
        )
    return wanted


def _write_config(args: argparse.Namespace) -> int:
    sources = make_sources(_providers_arg(args.providers), args.source_name)
    out = Path(args.out)
    data_dir = args.data_dir
    if data_dir is None and args.database_url is None:
        data_dir = str((out / "data").resolve())
    files = write_run_files(
        out,
        sources,
        host=args.host,
        port=args.port,
        database_url=args.database_url,
        data_dir=data_dir,
        log_level=args.log_level,
    )
    print(f"wrote {files.config}")
    print(
        f"wrote {files.credentials} ({len(sources)} sources: "
        f"{', '.join(s.provider for s in sources)})"
    )
    print("next:")
    print(f"  HOOKLINE_CONFIG={files.config} .venv/bin/hookline serve")
    print(
        f"  LOADTEST_CREDENTIALS={files.credentials} .venv/bin/locust -f loadtests/locustfile.py "
        f"--headless -u 50 -r 10 -t 60s --host http://{args.host}:{args.port}"
    )
    return 0


def _sample(args: argparse.Namespace) -> int:
    generator = TrafficGenerator(
        load_credentials(args.credentials),
        base_url=args.url,
        batch_size=args.batch_size,
        duplicate_ratio=args.duplicate_ratio,
        bad_signature_ratio=args.bad_signature_ratio,
    )
    for request in generator.take(args.count, args.provider):
        line = {
            "kind": request.kind,
            "events": request.events,
            "method": "POST",
            "url": request.url,
            "headers": dict(request.headers),
            "body": request.body.decode("utf-8"),
        }
        print(json.dumps(line))
    return 0


def _bounded_count(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError("count must be between 1 and 10000")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.traffic", description="Signed webhook traffic for load tests."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    write = commands.add_parser(
        "write-config", help="fresh test sources: hookline.toml for the gateway + credentials.json"
    )
    write.add_argument("--out", default=str(DEFAULT_OUT), help=f"directory (default {DEFAULT_OUT})")
    write.add_argument("--providers", help="comma-separated (default: every available provider)")
    write.add_argument("--source-name", default="loadtest", help="source name (default loadtest)")
    write.add_argument("--host", default="127.0.0.1", help="gateway bind address")
    write.add_argument("--port", type=int, default=8000, help="gateway port")
    write.add_argument(
        "--database-url", help="PostgreSQL URL (default: embedded PostgreSQL under the out dir)"
    )
    write.add_argument("--data-dir", help="gateway data dir (default: <out>/data)")
    write.add_argument("--log-level", default="info", help="gateway log level (default info)")
    write.set_defaults(handler=_write_config)
    sample = commands.add_parser("sample", help="print signed requests as JSON lines")
    sample.add_argument(
        "--credentials", default=str(DEFAULT_OUT / "credentials.json"), help="credentials.json"
    )
    sample.add_argument("--url", default=DEFAULT_BASE_URL, help="gateway base URL")
    sample.add_argument("--provider", help="only this provider")
    sample.add_argument("--count", type=_bounded_count, default=1)
    sample.add_argument("--batch-size", type=int, default=1)
    sample.add_argument("--duplicate-ratio", type=float, default=0.0)
    sample.add_argument("--bad-signature-ratio", type=float, default=0.0)
    sample.set_defaults(handler=_sample)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
