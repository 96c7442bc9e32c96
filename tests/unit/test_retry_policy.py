"""The retry policy: status classification, full-jitter exponential backoff, Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from gateway.delivery.retry import RetryPolicy, Verdict, classify_status, parse_retry_after

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "verdict", "breaker_failure"),
    [
        (200, Verdict.SUCCESS, False),
        (204, Verdict.SUCCESS, False),
        (500, Verdict.RETRY, True),
        (502, Verdict.RETRY, True),
        (503, Verdict.RETRY, True),
        (429, Verdict.RETRY, True),
        (408, Verdict.RETRY, True),
        (409, Verdict.RETRY, False),
        (425, Verdict.RETRY, False),
        (400, Verdict.PERMANENT, False),
        (401, Verdict.PERMANENT, False),
        (404, Verdict.PERMANENT, False),
        (410, Verdict.PERMANENT, False),
        (422, Verdict.PERMANENT, False),
        (301, Verdict.RETRY, False),
        (299, Verdict.SUCCESS, False),
        (300, Verdict.RETRY, False),
        (499, Verdict.PERMANENT, False),
        (100, Verdict.RETRY, False),
    ],
)
def test_status_classification(status: int, verdict: Verdict, breaker_failure: bool) -> None:
    """2xx succeeds; 5xx/408/429 retry and count for the breaker; 409/425 retry without;
    other 4xx are permanent and never trip the breaker."""
    classification = classify_status(status)
    assert classification.verdict is verdict
    assert classification.breaker_failure is breaker_failure


def test_only_429_and_503_honour_retry_after() -> None:
    """Retry-After is a server's instruction on 429 and 503 only."""
    honouring = [
        s
        for s in (408, 409, 425, 429, 500, 502, 503, 504)
        if classify_status(s).honours_retry_after
    ]
    assert honouring == [429, 503]


def test_no_other_status_honours_retry_after() -> None:
    """Across every status from 100 to 599 the flags are real booleans and only 429 and 503
    honour Retry-After: a success, a permanent failure or an odd 1xx/3xx never does."""
    for status in range(100, 600):
        classification = classify_status(status)
        assert classification.honours_retry_after is (status in (429, 503)), status
        assert isinstance(classification.breaker_failure, bool), status


def test_full_jitter_backoff_is_random_times_the_capped_exponential() -> None:
    """delay(n) = random() * min(cap, base * 2**(n-1))."""
    policy = RetryPolicy(base_seconds=2.0, cap_seconds=100.0, random=lambda: 0.5)
    assert [policy.backoff(n) for n in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 50.0]
    top = RetryPolicy(base_seconds=1.0, cap_seconds=60.0, random=lambda: 1.0)
    assert top.backoff(1000) == 60.0  # no overflow for absurd attempt numbers
    zero = RetryPolicy(random=lambda: 0.0)
    assert zero.backoff(5) == 0.0


def test_backoff_draws_a_fresh_random_value_per_call() -> None:
    """Each delay uses a new random() draw (jitter spreads retries of many rows)."""
    draws = iter([0.1, 0.9])
    policy = RetryPolicy(base_seconds=10.0, random=lambda: next(draws))
    assert policy.backoff(1) == pytest.approx(1.0)
    assert policy.backoff(1) == pytest.approx(9.0)


def test_retry_after_replaces_the_backoff_within_bounds() -> None:
    """A Retry-After value is used as is, clamped to [0, retry_after_max_seconds]."""
    policy = RetryPolicy(retry_after_max_seconds=300.0, random=lambda: 1.0)
    assert policy.delay(1, retry_after=120.0) == 120.0
    assert policy.delay(1, retry_after=10_000.0) == 300.0
    assert policy.delay(1, retry_after=-5.0) == 0.0
    assert policy.delay(3, retry_after=None) == policy.backoff(3)


def test_attempts_are_exhausted_at_max_attempts() -> None:
    """max_attempts counts every attempt, the first included."""
    policy = RetryPolicy(max_attempts=3)
    assert [policy.exhausted(n) for n in (1, 2, 3, 4)] == [False, False, True, True]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        (format_datetime(NOW - timedelta(seconds=90), usegmt=True), 0.0),
        ("soon", None),
        ("-3", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    """Delta-seconds or an HTTP date (relative to now, never negative); anything else is
    ignored."""
    assert parse_retry_after(header, NOW) == expected
