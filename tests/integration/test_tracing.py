"""Traces leave a real gateway process over OTLP/HTTP, with the right shape, or not at all.

The gateway runs as a child process (``hookline serve``) because the tracer provider is
process-global and configured from ``OTEL_*`` at start-up. Spans go to a real OTLP receiver
on loopback: OtelTap (PyPI ``oteltap``, a native OTLP/HTTP protobuf listener) decodes each
span; OtelTap re-emits the original export requests to a small HTTP server of ours, which
keeps the resource (``service.name``) that OtelTap's per-span API does not carry.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from oteltap import (
    OtelTapHttpProtobufReceiver,
    OtelTapHttpProtobufReceiverSettings,
    OtelTapInitializationError,
)

from hookline_testing import samples_for
from tests.integration._gateway_process import clean_environment, free_port, run_gateway
from tests.integration._http_capture import Captured, capture_server

SPEC, KEY = samples_for("sendgrid").make_source("main")
#: the port OTLP exporters use when no endpoint is configured
DEFAULT_OTLP_PORT = 4318
SPAN_TIMEOUT_SECONDS = 15.0

_EXEMPLAR = re.compile(
    r'^hookline_webhook_request_duration_seconds_bucket\{[^}]*provider="sendgrid"[^}]*\}'
    r' \S+ # \{trace_id="(?P<trace_id>[0-9a-f]{32})"\} \S+',
    re.MULTILINE,
)


@dataclass
class OtlpReceiver:
    """What an OTLP receiver on ``endpoint`` got: decoded spans and raw export requests."""

    endpoint: str
    reemitted: Captured
    spans: list[Span] = field(default_factory=list)

    @property
    def exports(self) -> list[ExportTraceServiceRequest]:
        """The export requests as the gateway sent them (re-emitted by OtelTap)."""
        return [ExportTraceServiceRequest.FromString(r.body) for r in self.reemitted.requests]

    def named(self, name: str) -> list[Span]:
        return [span for span in self.spans if span.name == name]

    async def wait_for(self, *names: str, count: int = 1) -> dict[str, Span]:
        """The first span of each name, waiting until ``count`` of each have arrived."""
        deadline = asyncio.get_running_loop().time() + SPAN_TIMEOUT_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            if all(len(self.named(name)) >= count for name in names):
                return {name: self.named(name)[0] for name in names}
            await asyncio.sleep(0.05)
        got = sorted(span.name for span in self.spans)
        raise AssertionError(f"not {count} of each of {names} within the timeout; got {got}")

    def resource_attributes(self) -> list[dict[str, str]]:
        return [
            {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
            for export in self.exports
            for resource_spans in export.resource_spans
        ]


def _attributes(span: Span) -> dict[str, Any]:
    def value(kv: KeyValue) -> Any:
        kind = kv.value.WhichOneof("value")
        return getattr(kv.value, kind) if kind else None

    return {kv.key: value(kv) for kv in span.attributes}


async def _start_tap(port: int, reemit_url: str) -> OtelTapHttpProtobufReceiver:
    """Start OtelTap on ``port``; a busy port (another run of this test) is retried briefly."""
    settings = OtelTapHttpProtobufReceiverSettings(http_port=port, reemit_traces_to_url=reemit_url)
    for _ in range(100):
        try:
            return await OtelTapHttpProtobufReceiver(settings).start()
        except OtelTapInitializationError:
            await asyncio.sleep(0.2)
    raise AssertionError(f"cannot start the OTLP receiver on 127.0.0.1:{port}")


@contextlib.asynccontextmanager
async def otlp_receiver(port: int) -> AsyncIterator[OtlpReceiver]:
    """A real OTLP/HTTP receiver on ``127.0.0.1:port`` collecting everything it gets."""
    with capture_server() as reemitted:
        tap = await _start_tap(port, f"{reemitted.url}/v1/traces")
        receiver = OtlpReceiver(f"http://127.0.0.1:{port}", reemitted)

        async def collect() -> None:
            async for span in tap.stream_traces():
                receiver.spans.append(span)

        collector = asyncio.create_task(collect())
        # the stream subscribes on its first step; nothing is sent before the gateway runs
        await asyncio.sleep(0.05)
        try:
            yield receiver
        finally:
            await tap.stop()
            collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await collector


def _config(db_url: str, workdir: Path, sink_url: str | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "database": {"url": db_url, "pool_min_size": 1, "pool_max_size": 4},
        "storage": {"data_dir": str(workdir / "data")},
        "logging": {"format": "json", "level": "info"},
        "sources": [{"provider": "sendgrid", "name": "main", "signing_key": SPEC.signing_key}],
    }
    if sink_url is not None:
        config["sinks"] = [{"name": "crm", "url": sink_url}]
    return config


async def _send_signed_batch(url: str, count: int, seed: int) -> tuple[httpx.Response, str]:
    """POST a signed SendGrid batch; return the response and the OpenMetrics exposition."""
    body = samples_for("sendgrid").example_body(count, seed=seed)
    request = samples_for("sendgrid").signed_request(SPEC, KEY, body, now=datetime.now(UTC))
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:
        response = await client.post(
            "/webhooks/sendgrid/main", content=request.body, headers=dict(request.headers)
        )
        exposition = await client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
    assert exposition.headers["content-type"].startswith("application/openmetrics-text")
    return response, exposition.text


def _ids(span: Span) -> tuple[bytes, bytes]:
    return span.trace_id, span.span_id


def _check_request_tree(receiver: OtlpReceiver) -> Span:
    """webhook.request is a root span with verify, parse and store as its children."""
    (root,) = receiver.named("webhook.request")
    assert root.parent_span_id == b""
    attributes = _attributes(root)
    assert attributes["hookline.provider"] == "sendgrid"
    assert attributes["hookline.source"] == "main"
    assert attributes["hookline.outcome"] == "accepted"
    assert attributes["http.response.status_code"] == 200
    for name in ("webhook.verify", "webhook.parse", "webhook.store"):
        (child,) = receiver.named(name)
        assert child.trace_id == root.trace_id, name
        assert child.parent_span_id == root.span_id, name
    return root


def _check_flush(receiver: OtlpReceiver, root: Span) -> Span:
    """storage.flush is a root span of its own trace, linked to the request it carried."""
    (store,) = receiver.named("webhook.store")
    assert _attributes(store)["hookline.events"] == 4
    (flush,) = receiver.named("storage.flush")
    assert flush.parent_span_id == b""
    assert flush.trace_id != root.trace_id
    assert _attributes(flush)["hookline.batch_events"] == 4
    assert _attributes(flush)["hookline.requests"] == 1
    assert [(link.trace_id, link.span_id) for link in flush.links] == [_ids(store)]
    return flush


def _check_deliveries(receiver: OtlpReceiver, flush: Span, sink: Captured) -> None:
    """One delivery.attempt (CLIENT) span per event, linked to the flush that stored it, and
    each POST to the sink carries a W3C traceparent naming its attempt span."""
    attempts = receiver.named("delivery.attempt")
    assert len(attempts) == 4
    for attempt in attempts:
        assert attempt.kind == Span.SpanKind.SPAN_KIND_CLIENT
        attributes = _attributes(attempt)
        assert attributes["hookline.sink"] == "crm"
        assert attributes["hookline.attempt"] == 1
        assert attributes["http.response.status_code"] == 200
        assert [(link.trace_id, link.span_id) for link in attempt.links] == [_ids(flush)]
    posts = sink.on("/hook")
    assert len(posts) == 4
    traceparents = set()
    for post in posts:
        traceparent = post.headers["traceparent"]
        match = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})", traceparent)
        assert match, traceparent
        assert int(match[3], 16) & 1, f"not sampled: {traceparent}"
        traceparents.add((bytes.fromhex(match[1]), bytes.fromhex(match[2])))
    assert traceparents == {_ids(attempt) for attempt in attempts}


async def test_webhook_and_delivery_export_linked_spans_and_an_exemplar(
    fresh_db_url: str, tmp_path: Path
) -> None:
    """With OTEL_EXPORTER_OTLP_ENDPOINT set, one signed webhook of 4 events exports:
    webhook.request with verify/parse/store children; storage.flush in its own trace linked
    to the request's store span; a delivery.attempt per event linked to that flush, whose
    traceparent reaches the sink; service.name from OTEL_SERVICE_NAME on every export; and
    the latency histogram's OpenMetrics exemplar names the exported request trace."""
    with capture_server() as sink:
        async with otlp_receiver(free_port()) as receiver:
            env = clean_environment(
                OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
                OTEL_SERVICE_NAME="hookline-test",
                OTEL_BSP_SCHEDULE_DELAY="100",
            )
            config = _config(fresh_db_url, tmp_path, sink_url=f"{sink.url}/hook")
            async with run_gateway(config, tmp_path, env) as gateway:
                response, exposition = await _send_signed_batch(gateway.url, count=4, seed=7)
                assert response.status_code == 200, response.text
                assert response.json() == {"accepted": 4, "duplicates": 0}
                await receiver.wait_for("webhook.request", "storage.flush")
                await receiver.wait_for("delivery.attempt", count=4)
                await asyncio.sleep(0.5)  # anything exported twice would show up now

    root = _check_request_tree(receiver)
    flush = _check_flush(receiver, root)
    _check_deliveries(receiver, flush, sink)
    services = {attrs.get("service.name") for attrs in receiver.resource_attributes()}
    assert services == {"hookline-test"}
    exemplars = {match["trace_id"] for match in _EXEMPLAR.finditer(exposition)}
    assert exemplars == {root.trace_id.hex()}


async def test_nothing_is_exported_without_an_otlp_endpoint(
    fresh_db_url: str, tmp_path: Path
) -> None:
    """Without OTEL_EXPORTER_OTLP_* the gateway exports nothing, not even to the default
    endpoint (a receiver listens on 127.0.0.1:4318 to catch it), yet spans still exist:
    the canonical log line and the exemplar carry a trace id."""
    async with otlp_receiver(DEFAULT_OTLP_PORT) as receiver:
        env = clean_environment(OTEL_SERVICE_NAME="hookline-test", OTEL_BSP_SCHEDULE_DELAY="100")
        async with run_gateway(_config(fresh_db_url, tmp_path), tmp_path, env) as gateway:
            response, exposition = await _send_signed_batch(gateway.url, count=2, seed=8)
            assert response.status_code == 200, response.text
            await asyncio.sleep(1.0)  # ten export intervals
        # the process has exited: anything buffered would have been flushed by now
        await asyncio.sleep(0.5)
        assert receiver.spans == []
        assert receiver.exports == []

    processed = [line for line in gateway.json_lines() if line["event"] == "webhook.processed"]
    assert len(processed) == 1
    trace_id = processed[0]["trace_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
    assert {match["trace_id"] for match in _EXEMPLAR.finditer(exposition)} == {trace_id}


async def test_receiver_catches_an_export_to_the_default_endpoint(
    fresh_db_url: str, tmp_path: Path
) -> None:
    """The negative test above is meaningful: a gateway that exports to the default OTLP
    endpoint (named explicitly here) is seen by the receiver on 127.0.0.1:4318."""
    async with otlp_receiver(DEFAULT_OTLP_PORT) as receiver:
        env = clean_environment(
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://localhost:{DEFAULT_OTLP_PORT}",
            OTEL_BSP_SCHEDULE_DELAY="100",
        )
        async with run_gateway(_config(fresh_db_url, tmp_path), tmp_path, env) as gateway:
            response, _ = await _send_signed_batch(gateway.url, count=1, seed=9)
            assert response.status_code == 200, response.text
            spans = await receiver.wait_for("webhook.request")
    assert spans["webhook.request"].name == "webhook.request"
    services = {attrs.get("service.name") for attrs in receiver.resource_attributes()}
    assert services == {"hookline"}
