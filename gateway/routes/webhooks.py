"""``POST /webhooks/{provider}/{name}``: guard, verify, parse, store, ack.

The HTTP contract (DESIGN.md): 200 only once every event is durable; 401 for any
authentication failure (ESPs retry, which is right after a key-rotation mistake); 400 naming
the bad field; 404 unknown source; 405 / 413 / 415 / 429; 503 + Retry-After when nothing
durable can take the events. Never a 500 for anything the sender controls.

This is the hot path, so it is a plain ASGI handler inside Litestar: it reads the raw body
(the signature is over the exact bytes anyway) and writes its response itself, skipping
Litestar's parameter injection and response pipeline. The admin API keeps them.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog
from litestar import asgi
from litestar.enums import ScopeType
from litestar.types import HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send
from opentelemetry import trace
from opentelemetry.trace import Span

from gateway.errors import problem_body
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
from observability.tracing import child_span, exemplar, trace_id_of

__all__ = ["webhook_endpoint"]

log = structlog.get_logger("hookline.webhook")
_encode = msgspec.json.Encoder().encode

_JSON = b"application/json"
_PROBLEM = b"application/problem+json"


class _Response(msgspec.Struct, frozen=True):
    status: int
    body: bytes = b""
    content_type: bytes = _JSON
    headers: tuple[tuple[bytes, bytes], ...] = ()


class _Reply(Exception):
    """Internal: finish the request with this outcome and response."""

    def __init__(self, outcome: str, response: _Response) -> None:
        self.outcome = outcome
        self.response = response


def _problem(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> _Response:
    return _Response(
        status,
        problem_body(status, title, detail, extra),
        _PROBLEM,
        tuple((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
    )


async def _send(send: Send, response: _Response, *, head: bool = False) -> None:
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": response.status,
        "headers": [
            (b"content-type", response.content_type),
            (b"content-length", str(len(response.body)).encode()),
            *response.headers,
        ],
    }
    await send(start)
    body: HTTPResponseBodyEvent = {
        "type": "http.response.body",
        "body": b"" if head else response.body,
        "more_body": False,
    }
    await send(body)


# Mounted (Litestar 2 cannot route path parameters to an ASGI handler): the handler splits
# the rest of the path itself.
@asgi("/webhooks", is_mount=True, copy_scope=False)
async def webhook_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    """POST: an ESP's webhook. HEAD: Mandrill checks a new webhook URL with an unsigned HEAD
    (200 for a known source, else 404)."""
    if scope["type"] != ScopeType.HTTP:  # a WebSocket handshake: refuse it
        await send({"type": "websocket.close", "code": 1008, "reason": "not a WebSocket endpoint"})
        return
    rest: str = scope["path"]  # what follows /webhooks, e.g. "/sendgrid/main/"
    parts = rest.strip("/").split("/")
    if not rest.startswith("/") or len(parts) != 2 or not all(parts):
        await _send(send, _problem(404, "Not Found", "no such webhook path"))
        return
    provider, name = parts
    runtime: Runtime = scope["litestar_app"].state.runtime
    method: str = scope["method"]
    if method == "POST":
        response = await _webhook_post(runtime, provider, name, scope, receive)
    elif method == "HEAD":
        known = runtime.sources.get(provider, name) is not None
        response = _Response(200 if known else 404)
    else:
        response = _problem(
            405, "Method Not Allowed", f"{method} is not allowed", headers={"Allow": "POST, HEAD"}
        )
    await _send(send, response, head=method == "HEAD")


async def _webhook_post(
    runtime: Runtime, provider: str, name: str, scope: Scope, receive: Receive
) -> _Response:
    started = time.perf_counter()
    label = provider if provider in PROVIDERS else "unknown"
    outcome = "accepted"
    events_count = 0
    with runtime.tracer.start_as_current_span(
        "webhook.request", attributes={"hookline.provider": label, "hookline.source": name}
    ) as span:
        try:
            response, outcome, events_count = await _handle(
                runtime, span, provider, name, scope, receive
            )
        except _Reply as reply:
            response, outcome = reply.response, reply.outcome
        if span.is_recording():
            span.set_attribute("hookline.outcome", outcome)
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 500:
                span.set_status(trace.StatusCode.ERROR)
        elapsed = time.perf_counter() - started
        trace_id = trace_id_of(span)
        runtime.metrics.webhook_requests.labels(label, outcome).inc()
        runtime.metrics.webhook_request_duration.labels(label).observe(
            elapsed, exemplar=exemplar(trace_id)
        )
        log.info(
            "webhook.processed",
            provider=label,
            source=name,
            outcome=outcome,
            status=response.status,
            events=events_count,
            duration_ms=round(elapsed * 1000, 2),
            trace_id=trace_id,
        )
    return response


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers, names lower-cased (ASGI servers send them so), last one wins."""
    return {
        key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]
    }


def _too_large(limit: int) -> _Reply:
    return _Reply("too_large", _problem(413, "Payload Too Large", f"body over {limit} bytes"))


async def _read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    """The whole body. 413 when it is (or declares to be) over ``limit`` bytes; when the
    client leaves before its last chunk there is nothing to process and nobody to answer."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Reply(
                "disconnected",
                _problem(400, "Bad Request", "the client closed the connection mid-body"),
            )
        chunk: bytes = message.get("body", b"")  # type: ignore[assignment]
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _handle(
    runtime: Runtime, span: Span, provider: str, name: str, scope: Scope, receive: Receive
) -> tuple[_Response, str, int]:
    entry = runtime.sources.get(provider, name)
    if entry is None:
        raise _Reply("not_found", _problem(404, "Not Found", "unknown webhook source"))
    if entry.limiter is not None:
        wait = entry.limiter.try_acquire()
        if wait > 0:
            raise _Reply(
                "rate_limited",
                _problem(
                    429,
                    "Too Many Requests",
                    "source over its rate limit",
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                ),
            )
    headers = _headers(scope)
    try:
        entry.adapter.check_content_type(WebhookRequest("POST", "", headers, b""))
    except ContentTypeError as exc:
        raise _Reply(
            "unsupported_media_type", _problem(415, "Unsupported Media Type", str(exc))
        ) from None
    limit = runtime.settings.ingest.max_body_bytes
    body = await _read_body(receive, headers, limit)
    received_at = datetime.now(UTC)
    webhook = WebhookRequest("POST", _public_url(scope, headers, provider, name), headers, body)
    tracer = runtime.tracer
    with child_span(tracer, span, "webhook.verify"):
        try:
            await entry.adapter.verify(
                webhook,
                entry.spec,
                VerifyContext(now=received_at, fetch_certificate=runtime.fetch_certificate),
            )
        except AuthError as exc:
            raise _auth_failure(runtime, provider, exc) from None
        except PayloadError as exc:
            # a body that cannot even carry a credential (e.g. JSON nested too deeply)
            raise _bad_request(exc) from None
        except CertificateUnavailableError as exc:
            log.warning("webhook.certificate_unavailable", provider=provider, error=str(exc))
            raise _Reply(
                "unavailable",
                _problem(
                    503,
                    "Service Unavailable",
                    "the signing certificate cannot be fetched right now; retry later",
                    headers={"Retry-After": str(runtime.settings.ingest.retry_after_seconds)},
                ),
            ) from None
    with child_span(tracer, span, "webhook.parse"):
        try:
            result = entry.adapter.parse(webhook, entry.spec, received_at)
        except PayloadError as exc:
            raise _bad_request(exc) from None
    if result.nonce is not None:
        await _check_nonce(runtime, provider, name, result)
    if result.control is not None:
        await runtime.handle_control_message(provider, name, result.control)
        if not result.events:
            return _ack(0, 0), "control", 0
    with child_span(tracer, span, "webhook.store") as store_span:
        try:
            stored = await runtime.ingestor.ingest(result.events)
        except StorageUnavailableError:
            raise _Reply(
                "unavailable",
                _problem(
                    503,
                    "Service Unavailable",
                    "events cannot be stored right now; retry later",
                    headers={"Retry-After": str(runtime.settings.ingest.retry_after_seconds)},
                ),
            ) from None
        if store_span.is_recording():
            store_span.set_attribute("hookline.events", len(result.events))
            store_span.set_attribute("hookline.duplicates", stored.duplicates)
    outcome = "spooled" if stored.spooled else "accepted"
    return _ack(stored.accepted, stored.duplicates), outcome, len(result.events)


def _ack(accepted: int, duplicates: int) -> _Response:
    return _Response(200, _encode({"accepted": accepted, "duplicates": duplicates}))


def _bad_request(exc: PayloadError) -> _Reply:
    extra = {"field": exc.field} if exc.field else None
    return _Reply("bad_request", _problem(400, "Bad Request", str(exc), extra=extra))


def _auth_failure(runtime: Runtime, provider: str, exc: AuthError) -> _Reply:
    runtime.metrics.signature_failures.labels(provider, exc.reason).inc()
    log.warning("webhook.auth_failed", provider=provider, reason=exc.reason)
    return _Reply(
        "unauthorized",
        _problem(
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


def _public_url(scope: Scope, headers: dict[str, str], provider: str, name: str) -> str:
    """The URL the ESP called (behind a proxy: X-Forwarded-Proto / -Host)."""
    proto = headers.get("x-forwarded-proto") or scope.get("scheme", "http")
    host = headers.get("x-forwarded-host") or headers.get("host") or ""
    path = f"{scope.get('root_path', '')}/webhooks/{provider}/{name}"
    query = scope.get("query_string", b"")
    return (
        f"{proto}://{host}{path}?{query.decode('latin-1')}" if query else f"{proto}://{host}{path}"
    )
