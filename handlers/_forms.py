"""Form bodies (``application/x-www-form-urlencoded`` and ``multipart/form-data``) as a
dict of their text fields, for the few requests that arrive as forms at a JSON tracking
URL (e.g. a Mailgun inbound route): never on the hot path.
"""

from __future__ import annotations

from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP

from handlers._common import decode_form
from handlers.base import PayloadError, WebhookRequest

__all__ = ["FORM_TYPES", "form_fields"]

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def form_fields(request: WebhookRequest) -> dict[str, str]:
    """The text fields of a form body (file parts are skipped); the last value wins.
    ``PayloadError`` when the body is not the form its content type says."""
    if request.content_type == "application/x-www-form-urlencoded":
        return decode_form(request.body)
    header = request.headers.get("content-type", "")
    if request.content_type != "multipart/form-data" or "boundary=" not in header:
        raise PayloadError("body is not a form", "body")
    head = f"Content-Type: {header}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=HTTP).parsebytes(head + request.body)
    if not message.is_multipart():
        raise PayloadError("body is not a multipart form", "body")
    fields: dict[str, str] = {}
    for part in message.walk():
        if part.is_multipart():
            continue
        name = _field_name(part)
        if name is None or part.get_filename() is not None:
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            fields[name] = payload.decode(part.get_content_charset() or "utf-8", "replace")
    return fields


def _field_name(part: Message) -> str | None:
    name = part.get_param("name", header="content-disposition")
    return name if isinstance(name, str) else None
