"""One sink: a signed HTTP POST per event, classified by the retry policy, guarded by the
sink's circuit breaker.

The breaker only sees failures that say the sink is unwell (5xx, 408, 429, timeouts,
connection errors); a permanent 4xx answer is the consumer rejecting one event and leaves the
breaker alone. While the breaker is open the row is not attempted (no attempt is burned): it
is pushed to when the breaker may half-open; then a single probe goes through.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import datetime
from urllib.parse import urlsplit

import httpx
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, Tracer

from gateway.clock import Clock
from gateway.delivery.models import ClaimedRow, RowResult
from gateway.delivery.processors.base import AttemptGuard, Observed
from gateway.delivery.retry import RetryPolicy, Verdict, classify_status, parse_retry_after
from gateway.delivery.signing import WebhookSigner, webhook_id
from gateway.resilience import AsyncCircuitBreaker
from gateway.settings import SinkSettings
from observability.metrics import Metrics
from observability.tracing import exemplar

__all__ = ["USER_AGENT", "SinkDeliverer", "links_to_stored_event"]

USER_AGENT = "Hookline-Webhooks/0.1 (+https://www.standardwebhooks.com/)"
_ERROR_EXCERPT = 200


class SinkDeliverer:
    """Delivers claimed rows to one HTTP sink; returns what to write back, never raises.

    Satisfies ``processors.base.Deliverer``; admission, the breaker and the retry policy are
    the shared ``AttemptGuard``."""

    def __init__(
        self,
        settings: SinkSettings,
        *,
        http: httpx.AsyncClient,
        breaker: AsyncCircuitBreaker,
        policy: RetryPolicy,
        metrics: Metrics,
        tracer: Tracer,
        clock: Clock,
    ) -> None:
        self.name = settings.name
        self.url = settings.url
        self.timeout = settings.timeout_seconds
        self.signer = WebhookSigner(settings.secret) if settings.secret else None
        self.http = http
        self.breaker = breaker
        self.guard = AttemptGuard(
            settings.name, breaker=breaker, policy=policy, metrics=metrics, clock=clock
        )
        self.policy = policy
        self.metrics = metrics
        self.tracer = tracer
        self.clock = clock
        self._host = urlsplit(settings.url).hostname or ""

    async def deliver(self, row: ClaimedRow) -> RowResult:
        return await self.guard.run(row, self._attempt)

    async def close(self) -> None:
        """The HTTP client belongs to the runtime, which closes it."""

    def _headers(self, row: ClaimedRow, now: datetime, body: bytes) -> dict[str, str]:
        message_id = webhook_id(self.name, row.dedup_key)
        timestamp = int(now.timestamp())
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
        }
        if self.signer is not None:
            headers.update(self.signer.headers(message_id, timestamp, body))
        return headers

    async def _attempt(self, row: ClaimedRow, now: datetime) -> Observed | None:
        body = row.payload.encode()
        headers = self._headers(row, now, body)
        with self.tracer.start_as_current_span(
            "delivery.attempt",
            kind=SpanKind.CLIENT,
            links=links_to_stored_event(row.trace_context),
            attributes={
                "hookline.sink": self.name,
                "hookline.attempt": row.attempts + 1,
                "hookline.event_type": row.event_type,
                "messaging.message.id": headers["webhook-id"],
                "server.address": self._host,
                "http.request.method": "POST",
            },
        ) as span:
            propagate.inject(headers)
            observed = await self.guard.call(lambda: self._send(body, headers))
            if observed is not None:
                # inside the span, so the histogram's exemplar names this attempt's trace
                self.metrics.delivery_duration.labels(self.name).observe(
                    observed.duration, exemplar()
                )
                if observed.status is not None:
                    span.set_attribute("http.response.status_code", observed.status)
                if observed.verdict is not Verdict.SUCCESS:
                    span.set_status(Status(StatusCode.ERROR, observed.error))
        return observed

    async def _send(self, body: bytes, headers: dict[str, str]) -> Observed:
        started = time.perf_counter()
        observed = await self._exchange(body, headers)
        return replace(observed, duration=time.perf_counter() - started)

    async def _exchange(self, body: bytes, headers: dict[str, str]) -> Observed:
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.http.post(
                    self.url, content=body, headers=headers, timeout=self.timeout
                )
        except (TimeoutError, httpx.TimeoutException):
            return Observed(Verdict.RETRY, None, f"timeout after {self.timeout:g}s", True)
        except httpx.HTTPError as exc:
            return Observed(Verdict.RETRY, None, f"connection error: {type(exc).__name__}", True)
        except Exception as exc:  # e.g. an invalid URL: retry, it is not the sink's health
            return Observed(Verdict.RETRY, None, f"request error: {type(exc).__name__}", False)
        status = response.status_code
        classification = classify_status(status)
        if classification.verdict is Verdict.SUCCESS:
            return Observed(Verdict.SUCCESS, status, None, False)
        excerpt = response.text[:_ERROR_EXCERPT].strip()
        retry_after = (
            parse_retry_after(response.headers.get("retry-after"), self.clock.now())
            if classification.honours_retry_after
            else None
        )
        return Observed(
            classification.verdict,
            status,
            f"HTTP {status}" + (f": {excerpt}" if excerpt else ""),
            classification.breaker_failure,
            retry_after,
        )


def links_to_stored_event(trace_context: str | None) -> list[Link]:
    """A link to the trace that stored the event, when it was recorded."""
    if not trace_context:
        return []
    context = propagate.extract({"traceparent": trace_context})
    span_context = trace.get_current_span(context).get_span_context()
    return [Link(span_context)] if span_context.is_valid else []
