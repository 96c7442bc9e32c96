"""Where an AMQP sink publishes: the broker URL (with its password), the exchange and the
routing key template; validated at start-up, and printable without the password.

Pure (no client library, no I/O), so ``gateway.settings`` can validate a sink with it.
"""

from __future__ import annotations

import string
from urllib.parse import quote, urlsplit, urlunsplit

from gateway.settings import SinkSettings

__all__ = [
    "EXCHANGE_TYPES",
    "ROUTING_FIELDS",
    "RoutingKey",
    "amqp_settings_errors",
    "broker_url",
]

#: the fields a routing key template may use
ROUTING_FIELDS = ("provider", "source", "event_type")
EXCHANGE_TYPES = ("topic", "direct", "fanout", "headers")
#: AMQP 0-9-1 short strings (routing keys, exchange names) are at most 255 bytes
_SHORTSTR = 255


class RoutingKey:
    """A routing key template such as ``hookline.{provider}.{event_type}``."""

    __slots__ = ("template",)

    def __init__(self, template: str) -> None:
        problem = _template_problem(template)
        if problem is not None:
            raise ValueError(problem)
        self.template = template

    def render(self, *, provider: str, source: str, event_type: str) -> str:
        return self.template.format(provider=provider, source=source, event_type=event_type)


def _template_problem(template: str) -> str | None:
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"not a valid template ({exc})"
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in ROUTING_FIELDS:
            return f"unknown field '{{{field}}}' (known: " + ", ".join(ROUTING_FIELDS) + ")"
        if spec or conversion:
            return f"field '{{{field}}}' takes no format spec or conversion"
    if len(template.encode()) > _SHORTSTR:
        return f"longer than {_SHORTSTR} bytes"
    return None


def broker_url(sink: SinkSettings) -> str:
    """The URL to connect with: ``url`` with ``password`` (when given) as its password."""
    if sink.password is None:
        return sink.url
    parts = urlsplit(sink.url)
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host += f":{parts.port}"
    netloc = f"{quote(user, safe='')}:{quote(sink.password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def amqp_settings_errors(label: str, sink: SinkSettings) -> list[str]:
    """What is wrong with an ``kind = "amqp"`` sink, phrased for the operator."""
    errors: list[str] = []
    try:
        parts = urlsplit(sink.url)
        inline_password = parts.password
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return [f"{label}, field 'url': not a valid amqp:// URL"]
    if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
        errors.append(f"{label}, field 'url': must be an amqp:// or amqps:// URL with a host")
    if inline_password is not None and sink.password is not None:
        errors.append(
            f"{label}, field 'password': the URL already has a password; give it only once"
        )
    if sink.secret is not None:
        errors.append(
            f"{label}, field 'secret': AMQP messages are not signed (the broker connection "
            "is authenticated); remove it"
        )
    if sink.exchange_type not in EXCHANGE_TYPES:
        errors.append(
            f"{label}, field 'exchange_type': must be one of " + ", ".join(EXCHANGE_TYPES)
        )
    if len(sink.exchange.encode()) > _SHORTSTR:
        errors.append(f"{label}, field 'exchange': longer than {_SHORTSTR} bytes")
    problem = _template_problem(sink.routing_key)
    if problem is not None:
        errors.append(f"{label}, field 'routing_key': {problem}")
    return errors
