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

import asyncio
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
from gateway.nonces import NonceJournalError
from gateway.proxies import forwarded_origin
from gateway.runtime import Runtime
from gateway.sns_certificates import CertificateUnavailableError
from gateway.sources import SourceEntry
from gateway.storage.quarantine import ERROR_MAX_CHARS, QuarantineItem
from gateway.storage.storable import clean_json, clean_text
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
from observability.metrics import UNKNOWN_SOURCE
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
    # the configured source's name, else "unknown": a 404 must not create a series the sender named
    source_label = name if runtime.sources.get(provider, name) is not None else UNKNOWN_SOURCE
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
        runtime.metrics.webhook_requests.labels(label, source_label, outcome).inc()
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


async def _read_body(
    receive: Receive, headers: dict[str, str], limit: int, deadline_seconds: float
) -> bytes:
    """The whole body. 413 when it is (or declares to be) over ``limit`` bytes; 408 (and the
    connection closed) when it has not all arrived within ``deadline_seconds``; when the
    client leaves before its last chunk there is nothing to process and nobody to answer."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    # a bare timer that cancels this task, not asyncio.timeout: the context manager cost
    # ~17 µs per request, most of the time spent reading a body that has already arrived
    task = asyncio.current_task()
    assert task is not None
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    timer = asyncio.get_running_loop().call_later(deadline_seconds, expire)
    try:
        return await _receive_body(receive, limit)
    except asyncio.CancelledError:
        if not expired:
            raise
        task.uncancel()
        raise _Reply(
            "timeout",
            _problem(
                408,
                "Request Timeout",
                f"the body did not arrive within {deadline_seconds:g} seconds",
                headers={"Connection": "close"},
            ),
        ) from None
    finally:
        timer.cancel()


async def _receive_body(receive: Receive, limit: int) -> bytes:
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
    if runtime.stopping:  # SIGTERM: the ESP retries on another replica, not into our spool
        raise _Reply(
            "unavailable",
            _problem(
                503,
                "Service Unavailable",
                "this gateway is shutting down; retry later",
                headers={"Retry-After": str(runtime.settings.ingest.retry_after_seconds)},
            ),
        )
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
        raise _unsupported_media_type(exc) from None
    limit = runtime.settings.ingest.max_body_bytes
    body = await _read_body(
        receive, headers, limit, runtime.settings.server.body_read_timeout_seconds
    )
    received_at = datetime.now(UTC)
    url = _public_url(runtime, scope, headers, provider, name)
    webhook = WebhookRequest("POST", url, headers, body)
    tracer = runtime.tracer
    with child_span(tracer, span, "webhook.verify"):
        try:
            await entry.adapter.verify(
                webhook,
                entry.spec,
                VerifyContext(now=received_at, fetch_certificate=runtime.certificates.fetch),
            )
        except AuthError as exc:
            raise _auth_failure(runtime, provider, exc, entry.challenges) from None
        except PayloadError as exc:
            # a body that cannot even carry a credential (e.g. JSON nested too deeply)
            raise _bad_request(exc) from None
        except ContentTypeError as exc:
            # a content type the provider uses only for some bodies (SendGrid's multipart
            # Inbound Parse), with a body that is not one of them
            raise _unsupported_media_type(exc) from None
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
        except ContentTypeError as exc:
            raise _unsupported_media_type(exc) from None
    if result.nonce is not None:
        await _check_nonce(runtime, provider, entry, result)
    if result.control is not None:
        await runtime.control_messages.handle(provider, name, result.control)
        if not result.events:
            return _ack(0, 0), "control", 0
    rejected = _rejected(provider, name, received_at, result)
    with child_span(tracer, span, "webhook.store") as store_span:
        try:
            stored = await runtime.ingestor.ingest(result.events, rejected)
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
    return (
        _ack(stored.accepted, stored.duplicates, stored.quarantined),
        outcome,
        len(result.events),
    )


def _unsupported_media_type(exc: ContentTypeError) -> _Reply:
    return _Reply("unsupported_media_type", _problem(415, "Unsupported Media Type", str(exc)))


def _bad_request(exc: PayloadError) -> _Reply:
    extra = {"field": exc.field} if exc.field else None
    return _Reply("bad_request", _problem(400, "Bad Request", str(exc), extra=extra))


def _ack(accepted: int, duplicates: int, quarantined: int = 0) -> _Response:
    """200: everything is durable. ``quarantined`` (only when non-zero): items of the batch
    an adapter rejected or PostgreSQL refused, kept in the quarantine, not to be resent."""
    body: dict[str, int] = {"accepted": accepted, "duplicates": duplicates}
    if quarantined:
        body["quarantined"] = quarantined
    return _Response(200, _encode(body))


def _rejected(
    provider: str, source: str, received_at: datetime, result: ParseResult
) -> list[QuarantineItem]:
    """The items the adapter rejected, as parse-stage quarantine records (one log line per
    request: counts and field paths only, never the values)."""
    if not result.rejected:
        return []
    log.warning(
        "webhook.items_rejected",
        provider=provider,
        source=source,
        rejected=len(result.rejected),
        fields=sorted({item.field or "(item)" for item in result.rejected})[:10],
    )
    return [
        QuarantineItem(
            provider=provider,
            source=source,
            received_at=received_at,
            stage="parse",
            reason="invalid_item",
            error=clean_text(item.reason)[:ERROR_MAX_CHARS],
            field=item.field,
            raw=clean_json(item.raw),
        )
        for item in result.rejected
    ]


def _auth_failure(
    runtime: Runtime, provider: str, exc: AuthError, challenges: tuple[str, ...]
) -> _Reply:
    runtime.metrics.signature_failures.labels(provider, exc.reason).inc()
    log.warning("webhook.auth_failed", provider=provider, reason=exc.reason)
    problem = _problem(
        401, "Unauthorized", "signature missing, invalid or outside the replay window"
    )
    # one WWW-Authenticate header per scheme the source accepts (RFC 9110 section 11.6.1)
    headers = tuple((b"www-authenticate", challenge.encode()) for challenge in challenges)
    return _Reply("unauthorized", msgspec.structs.replace(problem, headers=headers))


async def _check_nonce(
    runtime: Runtime,
    provider: str,
    entry: SourceEntry,
    result: ParseResult,
) -> None:
    """Refuse a reused nonce with other content (401 ``replayed``), also while PostgreSQL is
    down (``gateway.nonces``); 503 when the nonce cannot be recorded anywhere."""
    assert result.nonce is not None
    try:
        await runtime.nonces.check(
            provider,
            entry.spec.name,
            result.nonce,
            result.nonce_digest or "",
            window_seconds=entry.spec.replay_window_seconds,
            events=result.events,
        )
    except NonceConflictError:
        raise _auth_failure(runtime, provider, AuthError("replayed"), entry.challenges) from None
    except NonceJournalError:
        raise _Reply(
            "unavailable",
            _problem(
                503,
                "Service Unavailable",
                "the request's nonce cannot be recorded right now; retry later",
                headers={"Retry-After": str(runtime.settings.ingest.retry_after_seconds)},
            ),
        ) from None


def _public_url(
    runtime: Runtime, scope: Scope, headers: dict[str, str], provider: str, name: str
) -> str:
    """The URL the ESP called (behind a trusted proxy: X-Forwarded-Proto / -Host)."""
    client = scope.get("client")
    proto, host = forwarded_origin(
        client[0] if client else None,
        scope.get("scheme", "http"),
        headers,
        runtime.settings.server.forwarded_allow_ips,
    )
    path = f"{scope.get('root_path', '')}/webhooks/{provider}/{name}"
    query = scope.get("query_string", b"")
    return (
        f"{proto}://{host}{path}?{query.decode('latin-1')}" if query else f"{proto}://{host}{path}"
    )
