"""Nothing Hookline prints gives away a secret or a full recipient address.

Known secrets are planted in the configuration (inline admin token, source signing keys, a
basic-auth password, a bearer token, sink URL credentials and a sink signing secret) and
known addresses and an SNS subscription token in the traffic of a full run: a real gateway
process on real PostgreSQL, webhooks from several providers, an SNS subscription
confirmation (a control message), deliveries to a real local sink and dead letters from a
sink that refuses them (whose log lines carry dedup keys that embed the recipient). Then
all of the gateway's stdout and stderr, and ``hookline check-config``'s output, are scanned.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from handlers.base import WebhookRequest
from hookline_testing import TEST_CERT_URL, samples_for
from tests.integration._gateway_process import ROOT, clean_environment, run_gateway
from tests.integration._http_capture import Captured, capture_server

SENDGRID_SPEC, SENDGRID_KEY = samples_for("sendgrid").make_source("main")
MAILGUN_SPEC, MAILGUN_KEY = samples_for("mailgun").make_source("main")
POSTMARK_SPEC, POSTMARK_AUTH = samples_for("postmark").make_source("main")
SES_SPEC, SES_MATERIAL = samples_for("ses").make_source("prod")
ADMIN_TOKEN = "inline-Admin-" + "5e7a" * 6
BREVO_TOKEN = "brevo-Bearer-" + "a11c" * 6
SINK_USER_PASSWORD = "sinkPw-" + "77e1" * 5
SINK_QUERY_TOKEN = "sinkQ-" + "0b0e" * 5
SINK_SECRET = "whsec_" + base64.b64encode(b"planted-sink-secret-32-bytes!!!!").decode()
#: the SES events (one Delivery naming two recipients) and what each sink must receive
SES_SEED = 17
SES_RECIPIENTS = [f"recipient{i}.{SES_SEED}@example.com" for i in range(2)]
WATCHED = "watched.person@example.org"


def _config(db_url: str, workdir: Path, good_sink: str, refusing_sink: str) -> dict[str, Any]:
    sink_url = good_sink.replace("://", f"://hook:{SINK_USER_PASSWORD}@")
    return {
        "database": {"url": db_url, "pool_min_size": 1, "pool_max_size": 4},
        "storage": {"data_dir": str(workdir / "data")},
        "logging": {"format": "json", "level": "info"},
        "admin": {"token": ADMIN_TOKEN},
        "sources": [
            {"provider": "sendgrid", "name": "main", "signing_key": SENDGRID_SPEC.signing_key},
            {"provider": "mailgun", "name": "main", "signing_key": MAILGUN_KEY},
            {"provider": "postmark", "name": "main", "basic_auth": POSTMARK_AUTH},
            {"provider": "brevo", "name": "main", "bearer_token": BREVO_TOKEN},
            {
                "provider": "ses",
                "name": "prod",
                "topic_arns": list(SES_SPEC.topic_arns),
                "sns_certificates": {TEST_CERT_URL: SES_SPEC.sns_certificates[TEST_CERT_URL]},
            },
        ],
        "sinks": [
            {
                "name": "crm",
                "url": f"{sink_url}/hook?token={SINK_QUERY_TOKEN}",
                "secret": SINK_SECRET,
            },
            {"name": "refusing", "url": f"{refusing_sink}/hook", "max_attempts": 1},
        ],
    }


async def _post(client: httpx.AsyncClient, path: str, request: WebhookRequest) -> int:
    response = await client.post(path, content=request.body, headers=dict(request.headers))
    return response.status_code


async def _traffic(client: httpx.AsyncClient, subscription: bytes) -> list[int]:
    now = datetime.now(UTC)
    sendgrid_body = (
        samples_for("sendgrid")
        .example_body(1, seed=3)
        .replace(b"user3-0@example.com", WATCHED.encode())
    )
    assert WATCHED.encode() in sendgrid_body
    basic = "Basic " + base64.b64encode(POSTMARK_AUTH.encode()).decode()
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    return [
        await _post(
            client,
            "/webhooks/sendgrid/main",
            samples_for("sendgrid").signed_request(
                SENDGRID_SPEC, SENDGRID_KEY, sendgrid_body, now=now
            ),
        ),
        await _post(
            client,
            "/webhooks/mailgun/main",
            samples_for("mailgun").signed_request(
                MAILGUN_SPEC, MAILGUN_KEY, samples_for("mailgun").example_body(seed=4), now=now
            ),
        ),
        (
            await client.post(
                "/webhooks/postmark/main",
                content=samples_for("postmark").example_body(seed=5),
                headers={"content-type": "application/json", "authorization": basic},
            )
        ).status_code,
        (
            await client.post(
                "/webhooks/brevo/main",
                content=b"{}",
                headers={"content-type": "application/json", "authorization": "Bearer wrong"},
            )
        ).status_code,
        await _post(
            client,
            "/webhooks/ses/prod",
            samples_for("ses").signed_request(
                SES_SPEC, SES_MATERIAL, samples_for("ses").example_body(2, seed=SES_SEED), now=now
            ),
        ),
        await _post(
            client,
            "/webhooks/ses/prod",
            samples_for("ses").signed_request(SES_SPEC, SES_MATERIAL, subscription, now=now),
        ),
        (await client.get(f"/v1/recipients/{WATCHED}", headers=admin)).status_code,
        (await client.get("/v1/events", params={"recipient": WATCHED}, headers=admin)).status_code,
        (await client.get("/v1/dlq", headers=admin)).status_code,
    ]


async def _until(condition: Any, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + 30
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.1)


def _check_config(config_path: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "check-config", "--config", str(config_path)],
        cwd=ROOT,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout + result.stderr


async def test_no_secret_or_full_address_in_any_output(fresh_db_url: str, tmp_path: Path) -> None:
    """Across a full run (accepted webhooks of five providers, a refused one, an SNS
    subscription confirmation, deliveries, dead letters, admin reads) and ``check-config``:
    no planted secret, SNS subscription token, database password or full recipient address
    appears in stdout or stderr; what is printed instead is the redacted form."""
    subscription = samples_for("ses").example_body(
        seed=SES_SEED + 1, event="SubscriptionConfirmation"
    )
    sns_token = json.loads(subscription)["Token"]
    with capture_server() as sink, capture_server(status=400) as refusing:
        config = _config(fresh_db_url, tmp_path, sink.url, refusing.url)
        async with (
            run_gateway(config, tmp_path, clean_environment()) as gateway,
            httpx.AsyncClient(base_url=gateway.url, timeout=10.0) as client,
        ):
            statuses = await _traffic(client, subscription)

            async def all_delivered() -> bool:
                return len(_delivered(sink)) >= 5

            async def dead_lettered() -> bool:
                return "delivery.dead_lettered" in gateway.stderr()

            await _until(all_delivered, "deliveries to the sink")
            await _until(dead_lettered, "dead letters of the refusing sink")
        check_config = _check_config(gateway.config_path)
    assert statuses == [200, 200, 200, 401, 200, 200, 200, 200, 200], statuses

    output = {
        "stderr": gateway.stderr(),
        "stdout": gateway.stdout(),
        "check-config": check_config,
    }
    db_password = fresh_db_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    secrets = {
        "admin token": ADMIN_TOKEN,
        "sendgrid verification key": (SENDGRID_SPEC.signing_key or "")[40:80],
        "mailgun signing key": MAILGUN_KEY,
        "postmark basic auth password": POSTMARK_AUTH.split(":", 1)[1],
        "brevo bearer token": BREVO_TOKEN,
        "sink URL password": SINK_USER_PASSWORD,
        "sink URL query token": SINK_QUERY_TOKEN,
        "sink signing secret": SINK_SECRET.removeprefix("whsec_"),
        "SNS subscription token": sns_token,
        "database password": db_password,
    }
    assert all(len(value) >= 12 for value in secrets.values()), secrets
    addresses = [WATCHED, *SES_RECIPIENTS, "user4@example.com", "user5@example.com"]
    leaks = [
        f"{name} in {where}"
        for where, text in output.items()
        for name, value in [*secrets.items(), *((a, a) for a in addresses)]
        if value in text
    ]
    assert leaks == []
    # the run did log what the scan is about, in its redacted form
    assert "sink: crm (http) -> http://hook:[redacted]@127.0.0.1:" in check_config
    assert "token=[redacted]" in check_config
    assert '"event":"webhook.control_message"' in output["stderr"]
    assert '"event":"delivery.dead_lettered"' in output["stderr"]
    assert "r***@example.com" in output["stderr"]  # the SES dedup keys, masked


def _delivered(sink: Captured) -> list[Any]:
    return list(sink.requests)
