"""Redaction of secrets and personal data in anything Hookline prints or logs: one place,
used by the structlog processor (``observability.logging``), ``hookline check-config`` and
any code that wants to show a value it does not control.

* ``redact_url``: a URL without its credentials: the password in the user info and the
  values of credential-like query parameters (``token``, ``key``, ``secret``, ``sig``...)
  become ``[redacted]``.
* ``redact_text``: every URL in a text redacted; with ``mask=True`` every email address in
  it masked (``j***@example.com``).
* ``redact_value``: the same through dicts, lists and tuples; values under secret-named keys
  (``token``, ``password``, ``signing_key``...) become ``[redacted]`` whatever they are.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "REDACTED",
    "is_secret_key",
    "mask_address",
    "needs_redaction",
    "redact_text",
    "redact_url",
    "redact_value",
]

REDACTED = "[redacted]"

#: key names (lower case, ``-`` as ``_``) whose values are never shown
_SECRET_KEYS = frozenset(
    {
        "signing_key",
        "secret",
        "token",
        "password",
        "passwd",
        "authorization",
        "proxy_authorization",
        "basic_auth",
        "bearer_token",
        "api_key",
        "apikey",
        "access_token",
        "refresh_token",
        "client_secret",
        "private_key",
        "dsn",
        "cookie",
        "set_cookie",
        "x_api_key",
    }
)
#: query parameter names (lower case) whose values are credentials when they contain these
_SECRET_PARAM_PARTS = ("token", "key", "secret", "sig", "pass", "auth", "credential", "code")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>\\]+")
#: an email address, also percent-encoded in a URL (``jane%40example.com``); the local part
#: leaves out ``/ = ? & %`` so a path or query around an address is not swallowed
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$*+^_`{|}~\-]+(?:@|%40)([A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+)")


@functools.lru_cache(maxsize=4096)
def is_secret_key(name: str) -> bool:
    """Whether a field called ``name`` holds a secret (``Token``, ``signing-key``...)."""
    return name.lower().replace("-", "_") in _SECRET_KEYS


def mask_address(address: str | None) -> str | None:
    """``jane@example.com`` -> ``j***@example.com`` (the domain helps debugging)."""
    if not address:
        return address
    local, at, domain = address.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def _secret_param(name: str) -> bool:
    lowered = name.lower()
    return any(part in lowered for part in _SECRET_PARAM_PARTS)


def redact_url(url: str) -> str:
    """``https://user:pw@host/p?token=t&x=1`` -> ``https://user:[redacted]@host/p?token=[redacted]&x=1``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    userinfo, at, host = netloc.rpartition("@")
    if at:
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:{REDACTED}@{host}" if colon else f"{REDACTED}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_secret_param(name) for name, _ in pairs):
            query = urlencode(
                [(name, REDACTED if _secret_param(name) else value) for name, value in pairs],
                safe="[]",
            )
    fragment = REDACTED if parts.fragment and "=" in parts.fragment else parts.fragment
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _mask_match(match: re.Match[str]) -> str:
    return f"{match.group(0)[:1]}***@{match.group(1)}"


def needs_redaction(text: str, *, mask: bool = True) -> bool:
    """A cheap test: whether ``redact_text`` could change ``text`` at all."""
    return "://" in text or (mask and ("@" in text or "%40" in text))


def redact_text(text: str, *, mask: bool = True) -> str:
    """``text`` with every URL redacted and, when ``mask``, every email address masked."""
    if "://" in text:
        text = _URL.sub(lambda match: redact_url(match.group(0)), text)
    if mask and ("@" in text or "%40" in text):
        text = _ADDRESS.sub(_mask_match, text)
    return text


def redact_value(value: Any, *, mask: bool = True, depth: int = 0) -> Any:
    """``value`` (str, mapping, list, tuple; anything else as is) redacted all the way
    down: secret-named keys hidden, URLs redacted, addresses masked when ``mask``."""
    if isinstance(value, str):
        return redact_text(value, mask=mask)
    if depth > 16:  # deeper than anything Hookline logs: show nothing rather than recurse
        return REDACTED
    if isinstance(value, Mapping):
        return {
            key: REDACTED
            if isinstance(key, str) and is_secret_key(key)
            else redact_value(item, mask=mask, depth=depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(item, mask=mask, depth=depth + 1) for item in value]
    return value
