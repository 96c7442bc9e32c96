"""HTTP auth challenges over real HTTP: a 401 names the schemes the source accepts, so a
client that sends credentials only after a challenge (``curl --anyauth``) authenticates."""

from __future__ import annotations

import asyncio
from typing import Any

from hookline_testing import samples_for

BASIC = "postmark:s3cret-pass"
BEARER = "t0ken-for-tests"


def www_authenticate(response: Any) -> list[str]:
    return response.headers.get_list("www-authenticate")


async def curl(*args: str) -> tuple[int, str]:
    """Run curl; (HTTP status, stderr)."""
    process = await asyncio.create_subprocess_exec(
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return int(out.decode() or 0), err.decode()


async def test_basic_auth_source_challenges_with_basic_and_curl_anyauth_gets_in(
    gateway_factory: Any,
) -> None:
    """Postmark (basic auth) answers 401 with ``Basic realm="hookline"``; curl --anyauth,
    which sends nothing until challenged, is then accepted (200) and the event stored."""
    sources = [{"provider": "postmark", "name": "main", "basic_auth": BASIC}]
    body = samples_for("postmark").example_body(seed=3)
    async with gateway_factory(sources=sources) as gw:
        refused = await gw.client.post(
            "/webhooks/postmark/main", content=body, headers={"content-type": "application/json"}
        )
        assert refused.status_code == 401
        assert www_authenticate(refused) == ['Basic realm="hookline"']
        status, err = await curl(
            "--anyauth",
            "-u",
            BASIC,
            "-H",
            "content-type: application/json",
            "--data-binary",
            body.decode(),
            f"{gw.url}/webhooks/postmark/main",
        )
        assert status == 200, err
        assert (
            gw.metric("hookline_signature_failures_total", provider="postmark", reason="missing")
            == 2
        )


async def test_bearer_and_signature_sources_name_their_schemes(gateway_factory: Any) -> None:
    """A bearer-token source challenges with ``Bearer realm="hookline"``; a signing
    provider keeps ``Signature``; a signing source that also requires basic auth names
    both schemes (one header each)."""
    sources = [
        {"provider": "postmark", "name": "bearer", "bearer_token": BEARER},
        {"provider": "mailgun", "name": "signed", "signing_key": "k" * 32},
        {"provider": "mailgun", "name": "both", "signing_key": "k" * 32, "basic_auth": BASIC},
    ]
    json_headers = {"content-type": "application/json"}
    async with gateway_factory(sources=sources) as gw:
        bearer = await gw.client.post(
            "/webhooks/postmark/bearer",
            content=samples_for("postmark").example_body(),
            headers=json_headers,
        )
        assert bearer.status_code == 401
        assert www_authenticate(bearer) == ['Bearer realm="hookline"']
        accepted = await gw.client.post(
            "/webhooks/postmark/bearer",
            content=samples_for("postmark").example_body(),
            headers={**json_headers, "authorization": f"Bearer {BEARER}"},
        )
        assert accepted.status_code == 200
        for name, expected in (
            ("signed", ["Signature"]),
            ("both", ['Basic realm="hookline"', "Signature"]),
        ):
            response = await gw.client.post(
                f"/webhooks/mailgun/{name}",
                content=samples_for("mailgun").example_body(),
                headers=json_headers,
            )
            assert response.status_code == 401
            assert www_authenticate(response) == expected
