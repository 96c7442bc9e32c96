"""Signed webhook traffic for the benches: one signing scheme per ESP, written as raw HTTP
requests that ``bench/wrk_replay.lua`` replays byte for byte.

This is the one module in ``bench/`` that reaches the ESP samples of ``hookline_testing``
(``make_source``, ``example_body``, ``signed_request``).
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from handlers import sendgrid
from handlers.base import SourceSpec, WebhookRequest
from hookline_testing import Samples, samples_for

__all__ = [
    "SCHEMES",
    "Scheme",
    "make_source",
    "sendgrid",
    "signed_requests",
    "source_toml",
    "spec_from_json",
    "spec_to_json",
    "write_replay_set",
    "write_requests",
]


@dataclass(frozen=True, slots=True)
class Scheme:
    """How one ESP authenticates its webhooks, and what that costs the receiver."""

    name: str  # the signing scheme, as the tables print it
    provider: str
    samples: Samples  # make_source, example_body, signed_request
    batches: bool  # the ESP sends several events per request


#: one provider per signing scheme that costs CPU
SCHEMES: dict[str, Scheme] = {
    s.provider: s
    for s in (
        Scheme("ECDSA P-256", "sendgrid", samples_for("sendgrid"), batches=True),
        Scheme("RSA-SHA1 (SNS)", "ses", samples_for("ses"), batches=False),
        Scheme("HMAC-SHA256", "mailgun", samples_for("mailgun"), batches=False),
        Scheme("basic auth", "postmark", samples_for("postmark"), batches=False),
    )
}


def make_source(provider: str, name: str = "main") -> tuple[SourceSpec, Any]:
    """A source with fresh credentials, and the material that signs its traffic."""
    spec, material = SCHEMES[provider].samples.make_source(name)
    return spec, material


def spec_to_json(spec: SourceSpec) -> str:
    """A SourceSpec for a receiver process's environment (secrets included: bench only)."""
    return json.dumps(
        {
            "provider": spec.provider,
            "name": spec.name,
            "signing_key": spec.signing_key,
            "basic_auth": spec.basic_auth,
            "topic_arns": list(spec.topic_arns),
            "sns_certificates": dict(spec.sns_certificates),
        }
    )


def spec_from_json(text: str) -> SourceSpec:
    fields = json.loads(text)
    fields["topic_arns"] = tuple(fields["topic_arns"])
    return SourceSpec(**fields)


def source_toml(spec: SourceSpec) -> str:
    """The ``[[sources]]`` entry of Hookline's configuration for ``spec`` (JSON strings are
    TOML basic strings)."""
    lines = [
        "[[sources]]",
        f"provider = {json.dumps(spec.provider)}",
        f"name = {json.dumps(spec.name)}",
    ]
    for key in ("signing_key", "basic_auth"):
        value = getattr(spec, key)
        if value is not None:
            lines.append(f"{key} = {json.dumps(value)}")
    if spec.topic_arns:
        lines.append(f"topic_arns = {json.dumps(list(spec.topic_arns))}")
    if spec.sns_certificates:
        pairs = ", ".join(
            f"{json.dumps(k)} = {json.dumps(v)}" for k, v in spec.sns_certificates.items()
        )
        lines.append(f"sns_certificates = {{ {pairs} }}")
    return "\n".join(lines) + "\n"


def _raw_request(path: str, headers: dict[str, str], body: bytes) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def signed_requests(
    spec: SourceSpec, material: Any, *, count: int, batch: int = 1, seed: int = 0
) -> Iterator[WebhookRequest]:
    """``count`` signed requests of ``batch`` events, every event unique (seeds ``seed`` to
    ``seed + count - 1``), as the ESP would send them now."""
    samples = SCHEMES[spec.provider].samples
    now = datetime.now(UTC)
    for n in range(count):
        body = samples.example_body(batch, seed=seed + n, now=now)
        yield samples.signed_request(spec, material, body, now=now)


def write_requests(
    path: Path, spec: SourceSpec, material: Any, *, count: int, batch: int = 1, seed: int = 0
) -> None:
    """``signed_requests`` into ``path`` as raw HTTP, each ``<length>\\n<request>``."""
    target = f"/webhooks/{spec.provider}/{spec.name}"
    with open(path, "wb") as handle:
        for request in signed_requests(spec, material, count=count, batch=batch, seed=seed):
            raw = _raw_request(target, dict(request.headers), request.body)
            handle.write(b"%d\n" % len(raw) + raw)


def write_replay_set(
    directory: Path,
    spec: SourceSpec,
    material: Any,
    *,
    count: int,
    batch: int = 1,
    seed: int = 0,
    threads: int = 2,
) -> None:
    """``count`` requests for ``bench/wrk_replay.lua`` with ``-t{threads}``: one file per wrk
    thread (``requests-<thread>.txt``), each signed in its own forked process (signing
    keys do not pickle; fork shares them), events unique across the files."""
    directory.mkdir(parents=True, exist_ok=True)
    fork = multiprocessing.get_context("fork")
    signers = [
        fork.Process(
            target=write_requests,
            args=(directory / f"requests-{thread}.txt", spec, material),
            kwargs={
                "count": count // threads,
                "batch": batch,
                "seed": seed + thread * (count // threads + 1),
            },
        )
        for thread in range(threads)
    ]
    for signer in signers:
        signer.start()
    for signer in signers:
        signer.join()
        if signer.exitcode != 0:
            raise RuntimeError(f"signing {directory} failed (exit {signer.exitcode})")
