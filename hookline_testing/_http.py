"""What every sample module's ``signed_request`` shares: where a local gateway listens, and
the ``Authorization`` header of the ESPs that sign nothing."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from handlers.base import SourceSpec, WebhookRequest

__all__ = ["basic_auth_header", "default_url", "transport_auth_headers", "unsigned_json_request"]


def basic_auth_header(credentials: str) -> str:
    """The ``Authorization`` header value for ``user:password``."""
    return "Basic " + base64.b64encode(credentials.encode()).decode("ascii")


def default_url(source: SourceSpec) -> str:
    """Where a local gateway receives this source's webhooks."""
    return f"http://127.0.0.1:8000/webhooks/{source.provider}/{source.name}"


def transport_auth_headers(source: SourceSpec) -> dict[str, str]:
    """The ``Authorization`` header an ESP configured with this source's credentials sends
    (basic auth preferred, else bearer token); empty when none is configured."""
    if source.basic_auth is not None:
        return {"authorization": basic_auth_header(source.basic_auth)}
    if source.bearer_token is not None:
        return {"authorization": f"Bearer {source.bearer_token}"}
    return {}


def unsigned_json_request(
    source: SourceSpec,
    material: Any,
    body: bytes,
    *,
    now: datetime,
    url: str | None = None,
) -> WebhookRequest:
    """The POST of an ESP that signs nothing (Brevo, Mailjet, Postmark, SparkPost): the JSON
    body and the ``Authorization`` header of the source's transport credentials."""
    del material, now  # nothing is signed; the credentials come from the source
    return WebhookRequest(
        method="POST",
        url=url or default_url(source),
        headers={"content-type": "application/json", **transport_auth_headers(source)},
        body=body,
    )
