"""OpenTelemetry tracing: a tracer provider configured from the standard OTEL_* variables.

Spans are exported over OTLP/HTTP only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set; otherwise spans still exist (trace ids for
logs, exemplars and ``traceparent``) but nothing leaves the process. Sampling follows
``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` (the SDK reads them).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from contextlib import AbstractContextManager

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import INVALID_SPAN, Span, Tracer

__all__ = [
    "child_span",
    "configure_tracing",
    "current_trace_id",
    "exemplar",
    "shutdown_tracing",
    "trace_id_of",
]

_provider: TracerProvider | None = None


def configure_tracing(environ: Mapping[str, str] | None = None) -> Tracer:
    """Install the SDK tracer provider once per process; return Hookline's tracer."""
    global _provider
    environ = os.environ if environ is None else environ
    if _provider is None:
        resource = Resource.create({"service.name": environ.get("OTEL_SERVICE_NAME", "hookline")})
        exporting = bool(
            environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
            or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        )
        # Without an exporter nothing would ever leave the process, so spans are not
        # recorded (ALWAYS_OFF): they still carry trace and span ids for logs and
        # ``traceparent``, at a fraction of the cost of recording them.
        provider = TracerProvider(resource=resource, sampler=None if exporting else ALWAYS_OFF)
        if exporting:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        _provider = provider
    return trace.get_tracer("hookline")


def shutdown_tracing() -> None:
    if _provider is not None:
        _provider.force_flush(timeout_millis=5000)


_NOT_RECORDED: AbstractContextManager[Span] = contextlib.nullcontext(INVALID_SPAN)


def child_span(tracer: Tracer, parent: Span, name: str) -> AbstractContextManager[Span]:
    """A child of ``parent`` made current, or, when ``parent`` is not recorded (nothing under
    it would be), a shared no-op that yields the invalid span: the hot path then pays for
    one span per request, not one per stage."""
    if parent.is_recording():
        return tracer.start_as_current_span(name)
    return _NOT_RECORDED


def trace_id_of(span: Span) -> str | None:
    context = span.get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def current_trace_id() -> str | None:
    return trace_id_of(trace.get_current_span())


def exemplar(trace_id: str | None = None) -> dict[str, str] | None:
    """An exemplar for ``trace_id`` (default: the current span's), for histogram
    observations (OpenMetrics). Also for unsampled spans: the trace id is in the request's
    log lines, so a slow bucket still leads to its ``webhook.processed`` line."""
    trace_id = trace_id or current_trace_id()
    return {"trace_id": trace_id} if trace_id else None
