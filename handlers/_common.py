"""The one field-extraction library of the ESP adapters (private to ``handlers``).

Every adapter reads its (untrusted) body through these helpers, so the same malformed field
has the same outcome whichever ESP sent it, and ``parse`` never leaks ``KeyError`` /
``TypeError`` / ``ValueError`` to the gateway. Field names in errors are paths into the body:
``[2].timestamp``, ``event-data.message.headers``, ``Message.bounce.timestamp``.

Strictness policy (also in ``docs/providers.md``, "How fields are read"):

- **Required** are the fields without which there is no event: the body's shape (the
  objects and arrays that hold the event), the event's type (the ESP's event name, and a
  flag that decides the normalized type or bounce class where there is no "undetermined"
  to fall back to: Postmark's ``SuppressSending``, Mailjet's ``hard_bounce``), the
  recipient of an event of a type the adapter knows (``unknown`` events may name none),
  and an event time that is present. Missing, empty or of the wrong type, a required field
  is a ``PayloadError`` naming its path (``req_str``, ``req_bool``, ``expect_object``,
  ``expect_list``, ``recipient_at``): a 400 for a single-event body, the item alone
  quarantined in a batch (``handlers._batch``).
- **Optional** is everything else (ids, reasons, diagnostics, URLs, user agents, tags,
  metadata). Of the wrong type it reads as absent (``opt_*`` return ``None``, ``tags_from``
  an empty tuple), never a 400 for the whole request: such a field only adds detail to an
  event that is complete without it, refusing the request would make the ESP retry and in
  the end drop a real event (a bounce that should suppress), and ``raw`` keeps the value
  exactly as sent, so nothing is lost. It is not counted: adapters are pure (no metrics),
  and a per-field check would add Python work per event on the ingest hot path. Numbers
  are text where ESPs send ids as numbers (``opt_str``); an empty string is absent.
- **Time**: ``event_time`` picks ``occurred_at`` and records its ``TimeSource``: the
  event's own time, else the envelope's (the request's signed timestamp, the SNS
  ``Timestamp``, when the ESP sent the batch), else the receipt time. An event time that is
  present must parse (``epoch_to_utc`` / ``iso_to_utc``, the only two timestamp parsers):
  garbage is a ``PayloadError``, since storing another time would misdate the event. An
  envelope time that does not parse is skipped (``lenient``): it is the transport's, not
  the event's, and the receipt time is as true a fallback.
- **SMTP status**: ``smtp_status_from_text`` is the one parser of MTA responses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from handlers.base import Adapter, AuthError, PayloadError, SourceSpec, WebhookRequest
from handlers.events import TimeSource

__all__ = [
    "MAX_JSON_DEPTH",
    "check_json_depth",
    "decode_embedded_json",
    "decode_form",
    "decode_json",
    "epoch_to_utc",
    "event_time",
    "expect_list",
    "expect_object",
    "iso_to_utc",
    "lenient",
    "opt_bool",
    "opt_list",
    "opt_object",
    "opt_str",
    "opt_time",
    "recipient_at",
    "req_bool",
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
#: more than six fractional digits (.NET ticks); Python 3.11 accepts at most six
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")


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


# --- decoding --------------------------------------------------------------------------


def decode_json(body: bytes | str, field: str = "body") -> Any:
    """The JSON document ``body`` (bytes, or the text of a form field or string field such as
    an SNS ``Message``); ``PayloadError(field=field)`` if it is not UTF-8 JSON or nests
    deeper than ``MAX_JSON_DEPTH``."""
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
    """Best effort for JSON an ESP carries inside an optional string field (custom headers,
    payloads): the decoded value, or None when it is not JSON (or too deep to be taken)."""
    try:
        return decode_json(text, "embedded")
    except PayloadError:
        return None


def decode_form(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body; the last value wins for repeats."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise PayloadError("body is not a valid form encoding", "body") from None
    return dict(pairs)


# --- required fields: PayloadError naming the path ---------------------------------------


def _path(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def expect_object(value: Any, field: str) -> dict[str, Any]:
    """A required JSON object (the body, or a container holding the event)."""
    if not isinstance(value, dict):
        raise PayloadError(f"{field} must be a JSON object", field)
    return value


def expect_list(value: Any, field: str) -> list[Any]:
    """A required JSON array (a batch, a recipient list)."""
    if not isinstance(value, list):
        raise PayloadError(f"{field} must be a JSON array", field)
    return value


def req_str(obj: Mapping[str, Any], key: str, prefix: str = "", *, numbers: bool = False) -> str:
    """A required, non-empty string field at ``prefix.key`` (a number too, as text, when
    ``numbers``: a signature timestamp ESPs send either way)."""
    field = _path(prefix, key)
    value = obj.get(key)
    if numbers and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if value is None or value == "":
        raise PayloadError(f"{field} is required", field)
    if not isinstance(value, str):
        raise PayloadError(f"{field} must be a string", field)
    return value


def req_bool(obj: Mapping[str, Any], key: str, prefix: str = "") -> bool:
    """A required boolean flag (one that decides the event type), spelt as ``opt_bool``
    accepts; missing or anything else is a ``PayloadError``."""
    value = opt_bool(obj, key)
    if value is None:
        field = _path(prefix, key)
        raise PayloadError(f"{field} must be a boolean", field)
    return value


def recipient_at(obj: Mapping[str, Any], key: str, prefix: str, *, required: bool) -> str | None:
    """The recipient address at ``prefix.key``: ``required`` (a ``req_str``) for an event of
    a type the adapter knows; for an unknown one, a non-empty string or None."""
    if required:
        return req_str(obj, key, prefix)
    value = obj.get(key)
    return value if isinstance(value, str) and value else None


# --- optional fields: the wrong type reads as absent -------------------------------------


def opt_str(obj: Mapping[str, Any], key: str) -> str | None:
    """An optional text field: a non-empty string, or a number as text (ids ESPs send as
    numbers); None when absent, empty or of another type."""
    value = obj.get(key)
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def opt_bool(obj: Mapping[str, Any], key: str) -> bool | None:
    """An optional flag as ESPs spell it (``true``, ``1``, ``"true"``, ``"0"`` ...); None
    when absent or anything else."""
    value = obj.get(key)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    return None


def opt_object(obj: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    """An optional nested object; None when absent or not an object."""
    value = obj.get(key)
    return value if isinstance(value, dict) else None


def opt_list(obj: Mapping[str, Any], key: str) -> list[Any] | None:
    """An optional array; None when absent or not an array."""
    value = obj.get(key)
    return value if isinstance(value, list) else None


def tags_from(value: Any) -> tuple[str, ...]:
    """Tags as ESPs send them: a string, or an array of strings (numbers as text); empty and
    other items are skipped, and anything else is no tags."""
    if isinstance(value, str):
        return (value,) if value else ()
    if not isinstance(value, list):
        return ()
    tags: list[str] = []
    for item in value:
        if isinstance(item, str):
            if item:
                tags.append(item)
        elif isinstance(item, int | float) and not isinstance(item, bool):
            tags.append(str(item))
    return tuple(tags)


def strip_angle_brackets(value: str | None) -> str | None:
    """``<id@host>`` -> ``id@host``; empty stays None."""
    if value is None:
        return None
    stripped = value.strip()
    if stripped.startswith("<") and stripped.endswith(">"):
        stripped = stripped[1:-1].strip()
    return stripped or None


# --- time: two parsers and the one fallback order ----------------------------------------

#: a parser of one timestamp spelling: (value, field path) -> UTC, or PayloadError
TimeParser = Callable[[Any, str], datetime]


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
    if not 0 <= seconds <= _MAX_EPOCH_SECONDS:  # also refuses NaN
        raise PayloadError(f"{field} is out of range", field)
    return datetime.fromtimestamp(seconds, tz=UTC)


def iso_to_utc(value: Any, field: str) -> datetime:
    """An ISO 8601 date-time (``Z`` or an offset; naive means UTC) as an aware UTC datetime."""
    if not isinstance(value, str):
        raise PayloadError(f"{field} must be an ISO 8601 date-time", field)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = _LONG_FRACTION.sub(r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise PayloadError(f"{field} must be an ISO 8601 date-time", field) from None


def opt_time(
    obj: Mapping[str, Any], key: str, prefix: str, parse: TimeParser = epoch_to_utc
) -> datetime | None:
    """An event's own time at ``prefix.key``: None when absent (missing, null or empty),
    else parsed by ``parse`` (a value that does not parse is a ``PayloadError``)."""
    value = obj.get(key)
    if value is None or value == "":
        return None
    return parse(value, _path(prefix, key))


def lenient(parse: TimeParser, value: Any) -> datetime | None:
    """An envelope time: ``parse(value)``, or None when absent or unreadable (skipped)."""
    if value is None or value == "":
        return None
    try:
        return parse(value, "envelope")
    except PayloadError:
        return None


def event_time(
    received_at: datetime, event: datetime | None, envelope: datetime | None = None
) -> tuple[datetime, TimeSource]:
    """``occurred_at`` and where it came from: the event's own time, else the envelope's,
    else the receipt time (issue #17: every adapter, in this order)."""
    if event is not None:
        return event, TimeSource.EVENT
    if envelope is not None:
        return envelope, TimeSource.ENVELOPE
    return received_at, TimeSource.RECEIVED


# --- SMTP status -------------------------------------------------------------------------


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
