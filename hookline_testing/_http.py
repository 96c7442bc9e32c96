"""What every sample module's ``signed_request`` shares: where a local gateway listens, and
the ``Authorization`` header of the ESPs that sign nothing."""

from __future__ import annotations

import base64

from handlers.base import SourceSpec

__all__ = ["basic_auth_header", "default_url", "transport_auth_headers"]


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
