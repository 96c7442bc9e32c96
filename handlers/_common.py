"""Shared decoding helpers for the ESP adapters (private to ``handlers``).

Every helper turns a wrong shape into ``PayloadError`` naming the offending field, so an
adapter's ``parse`` never leaks ``KeyError``/``TypeError``/``ValueError`` to the gateway.
Field names are paths into the body: ``[2].timestamp``, ``event-data.message.headers``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from handlers.base import Adapter, AuthError, PayloadError, SourceSpec, WebhookRequest

__all__ = [
    "MAX_JSON_DEPTH",
    "check_json_depth",
    "decode_embedded_json",
    "decode_json",
    "epoch_to_utc",
    "expect_list",
    "expect_object",
    "iso_to_utc",
    "opt_bool",
    "opt_object",
    "opt_str",
    "req_str",
    "require_transport_auth",
    "smtp_status_from_text",
    "strip_angle_brackets",
    "tags_from",
]

#: newest plausible event time: year 9999 (datetime's limit); anything later is malformed
_MAX_EPOCH_SECONDS = 253402300799.0
_ENHANCED_STATUS = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
#: a bare reply code only where an MTA puts it: at the start (after an optional "smtp;"),
#: never a number inside the text ("delivered in 250 ms")
_BASIC_STATUS = re.compile(r"^\s*(?:smtp;\s*)?([245]\d\d)(?!\d)", re.IGNORECASE)


#: deepest JSON nesting any adapter accepts (ESP bodies are 3 to 6 levels deep). A bound far
#: below the interpreter's recursion limit, so nothing that walks a decoded body (dedup-key
#: encoding, storage, scrubbing) can run out of stack on what an adapter accepted.
MAX_JSON_DEPTH = 64

#: every byte except the ones that open or close a JSON container or a string
_NOT_STRUCTURAL = bytes(b for b in range(256) if b not in b'[]{}"')
_ONE_KIND = bytes.maketrans(b"{}", b"[]")


def check_json_depth(data: bytes | str, field: str = "body", limit: int = MAX_JSON_DEPTH) -> None:
    """``PayloadError`` if the JSON document ``data`` nests containers deeper than ``limit``.

    Runs before the document is decoded, in C-speed passes over the bytes (no per-byte Python
    loop): the brackets and quotes are kept, and when there are more brackets than ``limit``
    (the depth cannot be higher than their number) strings are dropped and matched pairs
    peeled off level by level. A document whose brackets do not match is not JSON: the
    decoder rejects it (this check only guarantees that no *valid* document is too deep)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    structural = raw.translate(None, _NOT_STRUCTURAL)
    if structural.count(b"[") + structural.count(b"{") <= limit:
        return
    if b"\\" in raw:
        # escaped backslashes, then escaped quotes: what is left of a string's quotes are
        # its delimiters (in valid JSON a backslash only ever appears inside a string)
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
        structural = raw.translate(None, _NOT_STRUCTURAL)
    # dropping two adjacent quotes never changes which brackets are inside a string; most
    # strings hold no brackets and vanish here, the rest go by quote parity
    structural = structural.replace(b'""', b"")
    if b'"' in structural:
        structural = b"".join(structural.split(b'"')[::2])
    # one kind of bracket, so that a pass peels exactly one level (mismatched kinds are not
    # JSON anyway: the decoder refuses them)
    structural = structural.translate(_ONE_KIND)
    for _ in range(limit + 1):
        peeled = structural.replace(b"[]", b"")
        if len(peeled) == len(structural):
            return  # all peeled (depth <= limit), or unbalanced: not JSON, the decoder says so
        structural = peeled
    raise PayloadError(f"{field} nests JSON deeper than {limit} levels", field)


def decode_json(body: bytes | str, field: str = "body") -> Any:
    """The JSON document ``body`` (bytes or the text of a form field or string field);
    ``PayloadError(field=field)`` if it is not UTF-8 JSON or nests deeper than
    ``MAX_JSON_DEPTH``."""
    check_json_depth(body, field)
    try:
        return msgspec.json.decode(body)
    except UnicodeDecodeError:
        raise PayloadError(f"{field} is not valid UTF-8", field) from None
    except msgspec.DecodeError as exc:
        raise PayloadError(f"{field} is not valid JSON: {exc}", field) from None
    except (RecursionError, ValueError):
        # unbalanced brackets the depth check leaves to the decoder; text with lone surrogates
        raise PayloadError(f"{field} is not valid JSON", field) from None


def decode_embedded_json(text: str) -> Any | None:
    """Best effort for JSON an ESP carries inside a string field (custom headers, payloads):
    the decoded value, or None when it is not JSON (or too deep to be taken as such)."""
    try:
        return decode_json(text, "embedded")
    except PayloadError:
        return None


def expect_object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{field} must be a JSON object", field)
    return value


def expect_list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise PayloadError(f"{field} must be a JSON array", field)
    return value


def _path(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def opt_str(obj: Mapping[str, Any], key: str, prefix: str = "") -> str | None:
    """A string field (numbers are accepted as ids and turned into text); None if absent."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    field = _path(prefix, key)
    raise PayloadError(f"{field} must be a string", field)


def req_str(obj: Mapping[str, Any], key: str, prefix: str = "", *, numbers: bool = False) -> str:
    """A required, non-empty string field (a number too, as text, when ``numbers``)."""
    field = _path(prefix, key)
    value = obj.get(key)
    if numbers:
        value = opt_str(obj, key, prefix)
    elif value is not None and not isinstance(value, str):
        raise PayloadError(f"{field} must be a string", field)
    if not value:
        raise PayloadError(f"{field} is required", field)
    return str(value)


def opt_bool(obj: Mapping[str, Any], key: str, prefix: str = "") -> bool:
    """A boolean flag; absent or null is False. Accepts 0/1 and "true"/"false" as ESPs do."""
    value = obj.get(key)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", ""):
        return value.lower() in ("true", "1")
    field = _path(prefix, key)
    raise PayloadError(f"{field} must be a boolean", field)


def opt_object(obj: Mapping[str, Any], key: str, prefix: str = "") -> dict[str, Any] | None:
    """A nested object field; None if absent or null."""
    value = obj.get(key)
    if value is None:
        return None
    return expect_object(value, _path(prefix, key))


def epoch_to_utc(value: Any, field: str, *, milliseconds: bool = False) -> datetime:
    """Seconds (or milliseconds) since the epoch, as a number or numeric string, in UTC."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PayloadError(f"{field} must be a number of seconds since the epoch", field)
    try:
        seconds = float(value)
    except (ValueError, OverflowError):
        raise PayloadError(f"{field} must be a number of seconds since the epoch", field) from None
    if milliseconds:
        seconds /= 1000.0
    if not 0 <= seconds <= _MAX_EPOCH_SECONDS:
        raise PayloadError(f"{field} is out of range", field)
    return datetime.fromtimestamp(seconds, tz=UTC)


def iso_to_utc(value: Any, field: str) -> datetime:
    """An ISO 8601 date-time (``Z`` or an offset; naive means UTC) as an aware UTC datetime."""
    if not isinstance(value, str):
        raise PayloadError(f"{field} must be an ISO 8601 date-time", field)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python 3.11 accepts at most 6 fractional digits; some ESPs send 7 (.NET ticks)
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise PayloadError(f"{field} must be an ISO 8601 date-time", field) from None


def strip_angle_brackets(value: str | None) -> str | None:
    """``<id@host>`` -> ``id@host``; empty stays None."""
    if value is None:
        return None
    stripped = value.strip()
    if stripped.startswith("<") and stripped.endswith(">"):
        stripped = stripped[1:-1].strip()
    return stripped or None


def smtp_status_from_text(text: str | None) -> str | None:
    """The most specific SMTP status in an MTA response: the enhanced code (``5.1.1``,
    never part of a longer dotted number such as an IP address) anywhere, else the reply
    code (``550``) at the start. The one SMTP-status parser of every adapter."""
    if not text:
        return None
    enhanced = _ENHANCED_STATUS.search(text)
    if enhanced:
        return enhanced.group(1)
    basic = _BASIC_STATUS.search(text)
    return basic.group(1) if basic else None


def tags_from(value: Any, field: str) -> tuple[str, ...]:
    """A tag list as ESPs send it: a string, a list of strings, or nothing."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        tags: list[str] = []
        for index, item in enumerate(value):
            if isinstance(item, str):
                if item:
                    tags.append(item)
            elif isinstance(item, int | float) and not isinstance(item, bool):
                tags.append(str(item))
            else:
                raise PayloadError(f"{field}[{index}] must be a string", f"{field}[{index}]")
        return tuple(tags)
    raise PayloadError(f"{field} must be a string or an array of strings", field)


def require_transport_auth(adapter: Adapter, request: WebhookRequest, source: SourceSpec) -> None:
    """For providers that sign nothing: basic auth or a bearer token must be configured and
    must match, unless the source explicitly allows unauthenticated requests (fail closed)."""
    if (
        source.basic_auth is None
        and source.bearer_token is None
        and not source.allow_unauthenticated
    ):
        raise AuthError("missing", f"{adapter.provider} source has no credentials configured")
    adapter.verify_transport_auth(request, source)
