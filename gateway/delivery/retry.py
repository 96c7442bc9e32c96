"""The retry policy: how an HTTP answer is classified, and when the next attempt is due.

* 2xx: success.
* 408, 429, 5xx, timeouts and connection errors: retry, and count as a breaker failure.
* 409, 425 (and the odd 1xx/3xx): retry, without tripping the breaker.
* any other 4xx: permanent, straight to the dead-letter queue.

Delays use exponential backoff with full jitter (``random() * min(cap, base * 2**(n-1))``
after the n-th failed attempt). On 429 and 503 a ``Retry-After`` header (seconds or an HTTP
date) replaces the backoff, clamped to ``[0, retry_after_max]``.
"""

from __future__ import annotations

import enum
import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime

from gateway.settings import SinkSettings

__all__ = ["Classification", "RetryPolicy", "Verdict", "classify_status", "parse_retry_after"]

#: a sink with every default (gateway/settings.py holds them); name and url are not used
_SINK = SinkSettings(name="", url="")

_RETRYABLE_4XX = frozenset({408, 409, 425, 429})
_BREAKER_4XX = frozenset({408, 429})
_RETRY_AFTER_STATUSES = frozenset({429, 503})


class Verdict(enum.Enum):
    SUCCESS = "success"
    RETRY = "retry"
    PERMANENT = "permanent"


@dataclass(frozen=True, slots=True)
class Classification:
    verdict: Verdict
    #: counts as a failure for the sink's circuit breaker
    breaker_failure: bool
    #: a Retry-After header on this status is honoured
    honours_retry_after: bool


def classify_status(status: int) -> Classification:
    """What an HTTP status means for a delivery."""
    if 200 <= status < 300:
        return Classification(Verdict.SUCCESS, False, False)
    honours = status in _RETRY_AFTER_STATUSES
    if status >= 500:
        return Classification(Verdict.RETRY, True, honours)
    if 400 <= status < 500:
        if status in _RETRYABLE_4XX:
            return Classification(Verdict.RETRY, status in _BREAKER_4XX, honours)
        return Classification(Verdict.PERMANENT, False, False)
    return Classification(Verdict.RETRY, False, False)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff and attempt limits for one sink; ``random`` is injectable for tests."""

    max_attempts: int = _SINK.max_attempts
    base_seconds: float = _SINK.backoff_base_seconds
    cap_seconds: float = _SINK.backoff_cap_seconds
    retry_after_max_seconds: float = _SINK.retry_after_max_seconds
    random: Callable[[], float] = field(default=_random.random, compare=False)

    def exhausted(self, attempts: int) -> bool:
        """True once ``attempts`` attempts have been made and none may follow."""
        return attempts >= self.max_attempts

    def backoff(self, attempts: int) -> float:
        """Full-jitter delay after the ``attempts``-th failed attempt (1-based)."""
        exponent = min(max(attempts - 1, 0), 62)
        ceiling = min(self.cap_seconds, self.base_seconds * float(2**exponent))
        return self.random() * ceiling

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds until the next attempt: ``Retry-After`` (bounded) or the backoff."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_max_seconds)
        return self.backoff(attempts)
