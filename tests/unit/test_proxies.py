"""Trusted proxies: uvicorn's forwarded_allow_ips semantics for the peer check."""

from __future__ import annotations

import pytest

from gateway.proxies import TrustedProxies, forwarded_origin


def test_addresses_networks_literals_and_star() -> None:
    """IPs, CIDR networks (v4 and v6), literals and ``*`` are matched as uvicorn does."""
    proxies = TrustedProxies("127.0.0.1, 10.0.0.0/8 ,fd00::/8,unix:/run/proxy.sock")
    assert proxies.trusts("127.0.0.1")
    assert proxies.trusts("10.20.30.40")
    assert proxies.trusts("fd00::1")
    assert proxies.trusts("unix:/run/proxy.sock")
    assert not proxies.trusts("127.0.0.2")
    assert not proxies.trusts("192.0.2.1")
    assert not proxies.trusts(None)
    assert not proxies.trusts("not-an-ip")
    assert TrustedProxies("*").trusts("203.0.113.9")
    assert not TrustedProxies("").trusts("127.0.0.1")


def test_a_bad_network_is_an_error() -> None:
    """A typo in a CIDR is refused rather than silently matching nothing."""
    with pytest.raises(ValueError):
        TrustedProxies("10.0.0.0/33")


def test_forwarded_origin_only_from_trusted_peers() -> None:
    """X-Forwarded-Proto/-Host are used for a trusted peer (first hop of a list), ignored
    otherwise; an odd X-Forwarded-Proto value is ignored."""
    headers = {
        "host": "gateway.internal:8000",
        "x-forwarded-host": "hooks.example.com, proxy2",
        "x-forwarded-proto": "https",
    }
    assert forwarded_origin("10.0.0.5", "http", headers, "10.0.0.0/8") == (
        "https",
        "hooks.example.com",
    )
    assert forwarded_origin("192.0.2.1", "http", headers, "10.0.0.0/8") == (
        "http",
        "gateway.internal:8000",
    )
    odd = {**headers, "x-forwarded-proto": "javascript"}
    assert forwarded_origin("10.0.0.5", "http", odd, "10.0.0.0/8")[0] == "http"
