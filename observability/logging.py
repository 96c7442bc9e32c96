"""structlog configuration: JSON when not a TTY, trace ids on every line, no secrets.

Recipients are masked (``j***@example.com``) unless ``[logging] mask_recipients = false``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import msgspec
import structlog
from opentelemetry import trace

from observability.redact import (
    REDACTED,
    is_secret_key,
    mask_address,
    needs_redaction,
    redact_text,
    redact_value,
)

__all__ = ["configure_logging", "mask_address"]

#: fields that hold one recipient address (masked even when not shaped like one)
_ADDRESS_KEYS = ("recipient", "address", "email")


#: field types that can hold nothing to redact (a secret-named key is still redacted)
_SCALARS = frozenset({int, float, bool, type(None)})

#: libraries that log full request URLs at info level
_URL_LOGGERS = ("httpx", "httpcore")


_json = msgspec.json.Encoder(enc_hook=repr)


def _json_bytes(event_dict: Any, **_: Any) -> bytes:
    """structlog's JSONRenderer serializer: msgspec writes the line several times faster than
    the standard library (non-JSON values become their ``repr``)."""
    return _json.encode(event_dict)


def _json_text(event_dict: Any, **_: Any) -> str:
    return _json.encode(event_dict).decode()


def _add_trace_ids(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Any:
    span = trace.get_current_span()
    context = span.get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict


def _redact(mask_recipients: bool) -> Any:
    """Every field of every line, exception text included (so this runs after
    ``format_exc_info``): secret-named fields hidden, credentials in URLs redacted, and
    recipient addresses masked except on debug lines or with ``mask_recipients = false``
    (see ``observability.redact``)."""

    def processor(_: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
        mask = mask_recipients and method != "debug"
        for key, value in event_dict.items():
            if is_secret_key(key):
                event_dict[key] = REDACTED
            elif isinstance(value, str):
                if mask and key in _ADDRESS_KEYS:
                    event_dict[key] = mask_address(value)
                elif needs_redaction(value, mask=mask):  # most values: nothing to do
                    event_dict[key] = redact_text(value, mask=mask)
            # numbers and None first: the Mapping check is an ABC lookup, slow per field
            elif type(value) not in _SCALARS and isinstance(value, Mapping | list | tuple):
                event_dict[key] = redact_value(value, mask=mask)
        return event_dict

    return processor


def configure_logging(level: str = "info", fmt: str = "auto", mask_recipients: bool = True) -> None:
    """Configure structlog and route the standard library's logging (uvicorn, asyncpg,
    httpx, ...) through the same processors and renderer, so every stderr line is one JSON
    object with the same fields (and the same redaction)."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_text)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_ids,
    ]
    redact = _redact(mask_recipients)
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redact,
            structlog.processors.JSONRenderer(serializer=_json_bytes) if use_json else renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=(
            structlog.BytesLoggerFactory(file=sys.stderr.buffer)
            if use_json
            else structlog.PrintLoggerFactory(file=sys.stderr)
        ),
        # bound once per logger: re-binding on every call was ~15% of a log line's cost.
        # A logger used before this call was not cached (structlog's default is off).
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric)
    # httpx logs every request line at INFO with the full URL: a sink URL may carry
    # credentials (user info, a query token), so only its warnings are let through
    for name in _URL_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
