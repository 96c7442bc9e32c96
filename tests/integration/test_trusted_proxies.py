"""Forwarded headers over real HTTP, through ``hookline serve`` as deployed: X-Forwarded-
Host/-Proto change the URL Mandrill's signature is checked against only when the TCP peer
is listed in ``[server] forwarded_allow_ips``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from hookline_testing import samples_for
from tests.integration._gateway_process import clean_environment, run_gateway

KEY = "mandrill-key-for-tests"
SPEC, _ = samples_for("mandrill").make_source("main", signing_key=KEY)
FORGED = {"x-forwarded-host": "forged.example", "x-forwarded-proto": "https"}
FORGED_URL = "https://forged.example/webhooks/mandrill/main"


def config(db_url: str, tmp_path: Path, allow: str) -> dict[str, Any]:
    return {
        "server": {"forwarded_allow_ips": allow},
        "database": {"url": db_url, "pool_min_size": 1, "pool_max_size": 3},
        "storage": {"data_dir": str(tmp_path / "data")},
        "logging": {"format": "json", "level": "warning"},
        "sources": [{"provider": "mandrill", "name": "main", "signing_key": KEY}],
    }


async def post(gateway_url: str, signed_for: str, seed: int) -> int:
    """POST a Mandrill batch signed for ``signed_for``, carrying forged forwarded headers."""
    request = samples_for("mandrill").signed_request(
        SPEC,
        KEY,
        samples_for("mandrill").example_body(seed=seed),
        now=datetime.now(UTC),
        url=signed_for,
    )
    async with httpx.AsyncClient(timeout=30.0) as client:
        response = await client.post(
            f"{gateway_url}/webhooks/mandrill/main",
            content=request.body,
            headers={**request.headers, **FORGED},
        )
    return response.status_code


async def test_forwarded_headers_from_an_untrusted_peer_do_not_change_the_signed_url(
    fresh_db_url: str, tmp_path: Path
) -> None:
    """The test client (127.0.0.1) is not a trusted proxy here: a signature made for the
    forged URL is refused, one made for the URL really called is accepted."""
    cfg = config(fresh_db_url, tmp_path, "10.9.8.7, 192.0.2.0/24")
    async with run_gateway(cfg, tmp_path, clean_environment()) as gateway:
        assert await post(gateway.url, FORGED_URL, seed=1) == 401
        real_url = f"{gateway.url}/webhooks/mandrill/main"
        assert await post(gateway.url, real_url, seed=2) == 200


async def test_forwarded_headers_from_a_trusted_proxy_are_honoured(
    fresh_db_url: str, tmp_path: Path
) -> None:
    """From a listed peer the forwarded host and scheme are the URL the ESP called."""
    cfg = config(fresh_db_url, tmp_path, "127.0.0.1")
    async with run_gateway(cfg, tmp_path, clean_environment()) as gateway:
        assert await post(gateway.url, FORGED_URL, seed=3) == 200
        assert await post(gateway.url, f"{gateway.url}/webhooks/mandrill/main", seed=4) == 401
