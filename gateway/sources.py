"""Configured webhook sources, looked up by ``(provider, name)``, with their rate limiters."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from gateway.settings import Settings, SourceSettings
from handlers.base import Adapter, SourceSpec
from handlers.registry import get_adapter

__all__ = ["AUTH_REALM", "RateLimiter", "SourceEntry", "SourceTable", "auth_challenges"]

#: the realm of every HTTP auth challenge the webhook endpoint sends
AUTH_REALM = "hookline"


@dataclass
class RateLimiter:
    """A token bucket: ``rate`` tokens per second, up to ``burst``."""

    rate: float
    burst: float
    tokens: float = field(init=False)
    updated: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = self.burst
        self.updated = time.monotonic()

    def try_acquire(self) -> float:
        """0.0 when allowed; otherwise the seconds until a token is available."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


def auth_challenges(spec: SourceSpec, adapter: Adapter) -> tuple[str, ...]:
    """The ``WWW-Authenticate`` values a 401 for this source carries, one per scheme that
    can authenticate it: ``Basic`` and/or ``Bearer`` for the credentials the source is
    configured with (so ``curl --anyauth`` and other challenge-driven clients work), and
    ``Signature`` for providers that sign their requests."""
    challenges: list[str] = []
    if spec.basic_auth is not None:
        challenges.append(f'Basic realm="{AUTH_REALM}"')
    if spec.bearer_token is not None:
        challenges.append(f'Bearer realm="{AUTH_REALM}"')
    if adapter.signs_requests or not challenges:
        challenges.append("Signature")
    return tuple(challenges)


@dataclass(frozen=True)
class SourceEntry:
    settings: SourceSettings
    spec: SourceSpec
    adapter: Adapter
    limiter: RateLimiter | None
    #: ``WWW-Authenticate`` values for a 401 (``auth_challenges``)
    challenges: tuple[str, ...] = ("Signature",)


class SourceTable:
    def __init__(self, settings: Settings) -> None:
        self._entries: dict[tuple[str, str], SourceEntry] = {}
        for source in settings.sources:
            limiter = None
            if source.rate_limit_per_second > 0:
                burst = source.rate_limit_burst or max(1, int(source.rate_limit_per_second))
                limiter = RateLimiter(source.rate_limit_per_second, float(burst))
            spec = source.spec()
            adapter = get_adapter(source.provider)
            self._entries[(source.provider, source.name)] = SourceEntry(
                settings=source,
                spec=spec,
                adapter=adapter,
                limiter=limiter,
                challenges=auth_challenges(spec, adapter),
            )

    def get(self, provider: str, name: str) -> SourceEntry | None:
        return self._entries.get((provider, name))

    def __len__(self) -> int:
        return len(self._entries)

    def providers(self) -> set[str]:
        return {provider for provider, _ in self._entries}
