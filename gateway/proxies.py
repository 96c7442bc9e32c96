"""Which peers may tell the gateway what the original request looked like.

``[server] forwarded_allow_ips`` (default ``127.0.0.1``) lists the reverse proxies whose
``X-Forwarded-Proto`` / ``X-Forwarded-Host`` are believed, with uvicorn's semantics: a
comma-separated list of IP addresses and networks (CIDR), ``*`` for every peer, and any
other entry compared literally (e.g. a unix socket path). From any other peer the headers
are ignored: they are the sender's words, and Mandrill's signature is checked against the
URL they would rebuild.

The check is on the TCP peer (ASGI ``scope["client"]``). ``hookline serve`` therefore runs
uvicorn with its own proxy-header rewriting off: uvicorn would replace ``scope["client"]``
with the X-Forwarded-For address before the gateway could see who the peer was. This module
is the one place forwarded headers are interpreted.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping

__all__ = ["TrustedProxies", "forwarded_origin", "parse_entries", "trusted_proxies"]

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_entries(spec: str) -> list[str]:
    """The non-empty, stripped entries of a comma-separated list."""
    return [entry.strip() for entry in spec.split(",") if entry.strip()]


class TrustedProxies:
    def __init__(self, spec: str) -> None:
        """``ValueError`` for an entry with a ``/`` that is not a network (``unix:`` socket
        entries are literals)."""
        entries = parse_entries(spec)
        self.everyone = "*" in entries
        self._addresses: set[_Address] = set()
        self._networks: list[_Network] = []
        self._literals: set[str] = set()
        for entry in entries:
            if entry == "*":
                continue
            if entry.startswith("unix:"):
                self._literals.add(entry)
                continue
            if "/" in entry:
                try:
                    self._networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    raise ValueError(f"{entry!r} is not an IP network") from None
                continue
            try:
                self._addresses.add(ipaddress.ip_address(entry))
            except ValueError:
                self._literals.add(entry)

    def trusts(self, peer: str | None) -> bool:
        if self.everyone:
            return True
        if not peer:
            return False
        if peer in self._literals:
            return True
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return address in self._addresses or any(address in net for net in self._networks)


@functools.cache
def trusted_proxies(spec: str) -> TrustedProxies:
    """The parsed list (built once per distinct setting)."""
    return TrustedProxies(spec)


def _first(value: str | None) -> str | None:
    """The first of a comma-separated header value (the client-most hop), or None."""
    if not value:
        return None
    first = value.split(",", 1)[0].strip()
    return first or None


def forwarded_origin(
    peer: str | None, scheme: str, headers: Mapping[str, str], spec: str
) -> tuple[str, str]:
    """``(scheme, host)`` of the request as the client sent it: from X-Forwarded-Proto /
    -Host when ``peer`` is a trusted proxy, else from the connection and ``Host``."""
    host = headers.get("host") or ""
    forwarded_proto = headers.get("x-forwarded-proto")
    forwarded_host = headers.get("x-forwarded-host")
    if (forwarded_proto or forwarded_host) and trusted_proxies(spec).trusts(peer):
        proto = _first(forwarded_proto)
        if proto in ("http", "https"):
            scheme = proto
        host = _first(forwarded_host) or host
    return scheme, host
