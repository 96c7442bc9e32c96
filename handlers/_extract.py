"""Typed extraction of fields from decoded ESP bodies, failing only with ``PayloadError``.

ESP bodies are untrusted input: every adapter reads them through these helpers so that a
wrong shape surfaces as a ``PayloadError`` naming the field (HTTP 400), never as a
``KeyError``/``TypeError`` (HTTP 500).

Two kinds of accessor:

- ``require_*``: the fields that say *what happened to whom*; a missing or mistyped value
  is a ``PayloadError``.
- ``optional_*``: everything else is best effort: a missing or mistyped value reads as
  ``None`` (the event is still stored, and ``raw`` keeps what the ESP sent).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from handlers._common import check_json_depth, smtp_status_from_text
from handlers.base import PayloadError

__all__ = [
    "decode_form",
    "decode_json",
    "epoch_to_utc",
    "iso_to_utc",
    "optional_bool",
    "optional_dict",
    "optional_list",
    "optional_str",
    "optional_text",
    "require_dict",
    "require_list",
    "require_str",
    "smtp_status_from",
    "str_tuple",
    "timestamp_or",
]


def decode_json(body: bytes, field: str = "body") -> Any:
    """The body as JSON; ``PayloadError`` for non-UTF-8, malformed or too deeply nested."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError(f"{field} is not UTF-8", field) from None
    check_json_depth(body, field)
    return _decode_text(text, field)


def decode_json_text(text: str, field: str) -> Any:
    """A JSON document held in a string (e.g. an SNS ``Message`` or a form field)."""
    check_json_depth(text, field)
    return _decode_text(text, field)


def _decode_text(text: str, field: str) -> Any:
    try:
        return msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError, ValueError):
        raise PayloadError(f"{field} is not valid JSON", field) from None


def decode_form(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body; the last value wins for repeats."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise PayloadError("body is not a valid form encoding", "body") from None
    return dict(pairs)


def require_dict(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{field} must be an object", field)
    return value


def require_list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise PayloadError(f"{field} must be an array", field)
    return value


def require_str(obj: Mapping[str, Any], key: str, path: str) -> str:
    """``obj[key]`` as a non-empty string; ``path`` is the field's full name for errors."""
    value = obj.get(key)
    if value is None:
        raise PayloadError(f"{path} is required", path)
    if not isinstance(value, str) or not value:
        raise PayloadError(f"{path} must be a non-empty string", path)
    return value


def optional_str(obj: Mapping[str, Any], key: str) -> str | None:
    """A non-empty string value, or None (missing, null, empty or another type)."""
    value = obj.get(key)
    return value if isinstance(value, str) and value else None


def optional_text(obj: Mapping[str, Any], key: str) -> str | None:
    """Like ``optional_str`` but also accepts numbers (ids sent as numbers), as text."""
    value = obj.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(value)
    return value if isinstance(value, str) and value else None


def optional_dict(obj: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = obj.get(key)
    return value if isinstance(value, dict) else None


def optional_list(obj: Mapping[str, Any], key: str) -> list[Any] | None:
    value = obj.get(key)
    return value if isinstance(value, list) else None


def optional_bool(obj: Mapping[str, Any], key: str) -> bool | None:
    value = obj.get(key)
    return value if isinstance(value, bool) else None


def str_tuple(value: Any) -> tuple[str, ...]:
    """Tags: the non-empty strings of a list (or a single string); anything else is ()."""
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str) and item)
    return ()


def epoch_to_utc(value: Any) -> datetime | None:
    """Seconds since the epoch (number or numeric string) as UTC, or None if not one."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        seconds = float(value)
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def iso_to_utc(value: Any) -> datetime | None:
    """An ISO 8601 timestamp as aware UTC (naive values are taken as UTC), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def timestamp_or(fallback: datetime, *candidates: datetime | None) -> datetime:
    """The first candidate that is set, else ``fallback`` (the time we received it)."""
    for candidate in candidates:
        if candidate is not None:
            return candidate
    return fallback


def smtp_status_from(text: str | None) -> str | None:
    """The SMTP status in a diagnostic line (``handlers._common.smtp_status_from_text``: one
    parser for every adapter)."""
    return smtp_status_from_text(text)
