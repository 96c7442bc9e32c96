"""Configured webhook sources, looked up by ``(provider, name)``, with their rate limiters."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from gateway.settings import Settings, SourceSettings
from handlers.base import Adapter, SourceSpec
from handlers.registry import get_adapter

__all__ = ["RateLimiter", "SourceEntry", "SourceTable"]


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


@dataclass(frozen=True)
class SourceEntry:
    settings: SourceSettings
    spec: SourceSpec
    adapter: Adapter
    limiter: RateLimiter | None


class SourceTable:
    def __init__(self, settings: Settings) -> None:
        self._entries: dict[tuple[str, str], SourceEntry] = {}
        for source in settings.sources:
            limiter = None
            if source.rate_limit_per_second > 0:
                burst = source.rate_limit_burst or max(1, int(source.rate_limit_per_second))
                limiter = RateLimiter(source.rate_limit_per_second, float(burst))
            self._entries[(source.provider, source.name)] = SourceEntry(
                settings=source,
                spec=source.spec(),
                adapter=get_adapter(source.provider),
                limiter=limiter,
            )

    def get(self, provider: str, name: str) -> SourceEntry | None:
        return self._entries.get((provider, name))

    def __len__(self) -> int:
        return len(self._entries)

    def providers(self) -> set[str]:
        return {provider for provider, _ in self._entries}
