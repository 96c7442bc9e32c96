"""``POST /webhooks/{provider}/{name}``: guard, verify, parse, store, ack.

The HTTP contract (DESIGN.md): 200 only once every event is durable; 401 for any
authentication failure (ESPs retry, which is right after a key-rotation mistake); 400 naming
the bad field; 404 unknown source; 413 / 415 / 429; 503 + Retry-After when nothing durable
can take the events. Never a 500 for anything the sender controls.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog
from litestar import Request, Response, route
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import FromPath
from opentelemetry import trace

from gateway.errors import problem_response
from gateway.ingest.pipeline import StorageUnavailableError
from gateway.runtime import CertificateUnavailableError, Runtime
from gateway.storage.store import NonceConflictError
from handlers.base import (
    AuthError,
    ContentTypeError,
    ParseResult,
    PayloadError,
    VerifyContext,
    WebhookRequest,
)
from handlers.registry import PROVIDERS
from observability.tracing import current_trace_id, exemplar

__all__ = ["webhook_head", "webhook_post"]

log = structlog.get_logger("hookline.webhook")
_encode = msgspec.json.Encoder().encode


class _Reply(Exception):
    """Internal: finish the request with this outcome and response."""

    def __init__(self, outcome: str, response: Response[bytes]) -> None:
        self.outcome = outcome
        self.response = response


def _runtime(request: Request[Any, Any, Any]) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@route("/webhooks/{provider:str}/{name:str}", http_method=["HEAD"], include_in_schema=False)
async def webhook_head(
    provider: FromPath[str], name: FromPath[str], request: Request[Any, Any, Any]
) -> Response[bytes]:
    """Mandrill checks a new webhook URL with an unsigned HEAD: answer 200 for known sources."""
    if _runtime(request).sources.get(provider, name) is None:
        return Response(content=b"", status_code=404)
    return Response(content=b"", status_code=200)


@route(
    "/webhooks/{provider:str}/{name:str}",
    http_method=["POST"],
    summary="Receive an ESP webhook",
    description="Verifies, normalizes and durably stores an ESP's email events.",
    tags=["webhooks"],
)
async def webhook_post(
    provider: FromPath[str], name: FromPath[str], request: Request[Any, Any, Any]
) -> Response[bytes]:
    runtime = _runtime(request)
    started = time.perf_counter()
    label = provider if provider in PROVIDERS else "unknown"
    outcome = "accepted"
    events_count = 0
    with runtime.tracer.start_as_current_span(
        "webhook.request", attributes={"hookline.provider": label, "hookline.source": name}
    ) as span:
        try:
            response, outcome, events_count = await _handle(runtime, provider, name, request)
        except _Reply as reply:
            response, outcome = reply.response, reply.outcome
        span.set_attribute("hookline.outcome", outcome)
        span.set_attribute("http.response.status_code", response.status_code)
        if (response.status_code or 200) >= 500:
            span.set_status(trace.StatusCode.ERROR)
        elapsed = time.perf_counter() - started
        runtime.metrics.webhook_requests.labels(label, outcome).inc()
        runtime.metrics.webhook_request_duration.labels(label).observe(elapsed, exemplar=exemplar())
        log.info(
            "webhook.processed",
            provider=label,
            source=name,
            outcome=outcome,
            status=response.status_code,
            events=events_count,
            duration_ms=round(elapsed * 1000, 2),
            trace_id=current_trace_id(),
        )
    return response


async def _handle(
    runtime: Runtime, provider: str, name: str, request: Request[Any, Any, Any]
) -> tuple[Response[bytes], str, int]:
    entry = runtime.sources.get(provider, name)
    if entry is None:
        raise _Reply("not_found", problem_response(404, "Not Found", "unknown webhook source"))
    if entry.limiter is not None:
        wait = entry.limiter.try_acquire()
        if wait > 0:
            raise _Reply(
                "rate_limited",
                problem_response(
                    429,
                    "Too Many Requests",
                    "source over its rate limit",
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                ),
            )
    headers = {key.lower(): value for key, value in request.headers.items()}
    try:
        entry.adapter.check_content_type(WebhookRequest("POST", "", headers, b""))
    except ContentTypeError as exc:
        raise _Reply(
            "unsupported_media_type", problem_response(415, "Unsupported Media Type", str(exc))
        ) from None
    try:
        body = await request.body()
    except RequestEntityTooLarge:
        raise _Reply(
            "too_large",
            problem_response(
                413,
                "Payload Too Large",
                f"body over {runtime.settings.ingest.max_body_bytes} bytes",
            ),
        ) from None
    received_at = datetime.now(UTC)
    webhook = WebhookRequest("POST", _public_url(request), headers, body)
    tracer = runtime.tracer
    with tracer.start_as_current_span("webhook.verify"):
        try:
            await entry.adapter.verify(
                webhook,
                entry.spec,
                VerifyContext(now=received_at, fetch_certificate=runtime.fetch_certificate),
            )
        except AuthError as exc:
            raise _auth_failure(runtime, provider, exc) from None
        except CertificateUnavailableError as exc:
            log.warning("webhook.certificate_unavailable", provider=provider, error=str(exc))
            raise _Reply(
                "unavailable",
                problem_response(
                    503,
                    "Service Unavailable",
                    "the signing certificate cannot be fetched right now; retry later",
                    headers={"Retry-After": str(runtime.settings.ingest.retry_after_seconds)},
                ),
            ) from None
    with tracer.start_as_current_span("webhook.parse"):
        try:
            result = entry.adapter.parse(webhook, entry.spec, received_at)
        except PayloadError as exc:
            extra = {"field": exc.field} if exc.field else None
            raise _Reply(
                "bad_request", problem_response(400, "Bad Request", str(exc), extra=extra)
            ) from None
    if result.nonce is not None:
        await _check_nonce(runtime, provider, name, result)
    if result.control is not None:
        await runtime.handle_control_message(provider, name, result.control)
        if not result.events:
            return _ack(0, 0), "control", 0
    with tracer.start_as_current_span("webhook.store") as span:
        try:
            stored = await runtime.ingestor.ingest(result.events)
        except StorageUnavailableError:
            retry_after = str(runtime.settings.ingest.retry_after_seconds)
            raise _Reply(
                "unavailable",
                problem_response(
                    503,
                    "Service Unavailable",
                    "events cannot be stored right now; retry later",
                    headers={"Retry-After": retry_after},
                ),
            ) from None
        span.set_attribute("hookline.events", len(result.events))
        span.set_attribute("hookline.duplicates", stored.duplicates)
    outcome = "spooled" if stored.spooled else "accepted"
    return _ack(stored.accepted, stored.duplicates), outcome, len(result.events)


def _ack(accepted: int, duplicates: int) -> Response[bytes]:
    return Response(
        content=_encode({"accepted": accepted, "duplicates": duplicates}),
        status_code=200,
        media_type="application/json",
    )


def _auth_failure(runtime: Runtime, provider: str, exc: AuthError) -> _Reply:
    runtime.metrics.signature_failures.labels(provider, exc.reason).inc()
    log.warning("webhook.auth_failed", provider=provider, reason=exc.reason)
    return _Reply(
        "unauthorized",
        problem_response(
            401,
            "Unauthorized",
            "signature missing, invalid or outside the replay window",
            headers={"WWW-Authenticate": "Signature"},
        ),
    )


async def _check_nonce(runtime: Runtime, provider: str, name: str, result: ParseResult) -> None:
    assert result.nonce is not None
    try:
        await runtime.remember_nonce(provider, name, result.nonce, result.nonce_digest or "")
    except NonceConflictError:
        raise _auth_failure(runtime, provider, AuthError("replayed")) from None
    except (OSError, TimeoutError) as exc:
        # the database is unreachable: the signature and its time window were verified, the
        # events go to the spool and are deduplicated by their own ids when drained
        log.warning("webhook.nonce_unchecked", provider=provider, error=type(exc).__name__)


def _public_url(request: Request[Any, Any, Any]) -> str:
    """The URL the ESP called (behind a proxy: X-Forwarded-Proto / -Host)."""
    proto = request.headers.get("x-forwarded-proto") or request.url.scheme
    host = request.headers.get("x-forwarded-host") or request.headers.get("host") or ""
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{proto}://{host}{request.url.path}{query}"
