"""The Locust run's knobs, read from ``LOADTEST_*`` environment variables.

================================  ================================================================
``LOADTEST_CREDENTIALS``          credentials.json from ``write-config``
                                  (default ``$TMPDIR/hookline-loadtest/credentials.json``)
``LOADTEST_PROVIDERS``            ``sendgrid:3,mailgun``: providers and integer task weights
                                  (default: every source in the credentials, weight 1)
``LOADTEST_BATCH_SIZE``           events per request for batching ESPs (default 1)
``LOADTEST_DUPLICATE_RATIO``      share of requests that redeliver a recent body (default 0)
``LOADTEST_BAD_SIGNATURE_RATIO``  share of requests signed with unknown credentials (default 0)
``LOADTEST_EVENT_WEIGHTS``        ``delivered=60,opened=20,...`` (default ``DEFAULT_WEIGHTS``)
``LOADTEST_WAIT_SECONDS``         pause between one user's requests (default 0)
``LOADTEST_SEED``                 first event seed (default: random per process; Locust's
                                  ``--loadtest-seed`` overrides it)
================================  ================================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from handlers.events import EventType
from loadtests.mix import DEFAULT_WEIGHTS, MAX_BATCH_SIZE, parse_weights
from loadtests.traffic import DEFAULT_OUT, SEED_SPACE

__all__ = ["LoadOptions", "OptionsError"]


class OptionsError(ValueError):
    """A ``LOADTEST_*`` variable has a value that cannot be used; the message names it."""


def _float(environ: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise OptionsError(f"{name}={text!r} is not a number") from None
    if not low <= value <= high:
        raise OptionsError(f"{name}={text} must be between {low:g} and {high:g}")
    return value


def _int(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise OptionsError(f"{name}={text!r} is not an integer") from None
    if not low <= value <= high:
        raise OptionsError(f"{name}={text} must be between {low} and {high}")
    return value


def _provider_weights(text: str) -> dict[str, int]:
    """``"sendgrid:3, mailgun"`` -> ``{"sendgrid": 3, "mailgun": 1}`` (Locust task weights)."""
    weights: dict[str, int] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        provider, sep, value = item.partition(":")
        try:
            weight = int(value) if sep else 1
        except ValueError:
            raise OptionsError(
                f"LOADTEST_PROVIDERS: weight of {provider!r} is not an integer"
            ) from None
        if weight < 0:
            raise OptionsError(f"LOADTEST_PROVIDERS: weight of {provider!r} is negative")
        weights[provider.strip()] = weight
    return weights


@dataclass(frozen=True)
class LoadOptions:
    credentials: Path = DEFAULT_OUT / "credentials.json"
    #: provider -> task weight; empty means every provider in the credentials, weight 1
    providers: Mapping[str, int] = field(default_factory=dict)
    batch_size: int = 1
    duplicate_ratio: float = 0.0
    bad_signature_ratio: float = 0.0
    event_weights: Mapping[EventType, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    wait_seconds: float = 0.0
    seed: int | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LoadOptions:
        env = os.environ if environ is None else environ
        weights_text = env.get("LOADTEST_EVENT_WEIGHTS", "").strip()
        try:
            event_weights = parse_weights(weights_text) if weights_text else dict(DEFAULT_WEIGHTS)
        except ValueError as exc:
            raise OptionsError(f"LOADTEST_EVENT_WEIGHTS: {exc}") from None
        duplicate_ratio = _float(env, "LOADTEST_DUPLICATE_RATIO", 0.0, 0.0, 1.0)
        bad_signature_ratio = _float(env, "LOADTEST_BAD_SIGNATURE_RATIO", 0.0, 0.0, 1.0)
        if duplicate_ratio + bad_signature_ratio > 1.0:
            raise OptionsError(
                "LOADTEST_DUPLICATE_RATIO + LOADTEST_BAD_SIGNATURE_RATIO must not exceed 1"
            )
        seed_text = env.get("LOADTEST_SEED", "").strip()
        return cls(
            credentials=Path(env.get("LOADTEST_CREDENTIALS") or cls.credentials),
            providers=_provider_weights(env.get("LOADTEST_PROVIDERS", "")),
            batch_size=_int(env, "LOADTEST_BATCH_SIZE", 1, 1, MAX_BATCH_SIZE),
            duplicate_ratio=duplicate_ratio,
            bad_signature_ratio=bad_signature_ratio,
            event_weights=event_weights,
            wait_seconds=_float(env, "LOADTEST_WAIT_SECONDS", 0.0, 0.0, 60.0),
            seed=_int(env, "LOADTEST_SEED", 0, 0, SEED_SPACE - 1) if seed_text else None,
        )

    def task_weights(self, available: list[str]) -> dict[str, int]:
        """Provider -> task weight; every name must have a source in the credentials."""
        if not self.providers:
            return dict.fromkeys(available, 1)
        missing = [p for p in self.providers if p not in available]
        if missing:
            raise OptionsError(
                f"LOADTEST_PROVIDERS names {', '.join(missing)}, which the credentials file "
                f"has no source for (it has: {', '.join(available)})"
            )
        chosen = {p: w for p, w in self.providers.items() if w > 0}
        if not chosen:
            raise OptionsError("LOADTEST_PROVIDERS gives no provider a positive weight")
        return chosen
