"""Structured logs of a real gateway process: the canonical line, trace ids, no secrets, and
no full recipient address at info level.

The gateway runs as a child process (``hookline serve``) with JSON logs at info level; its
stderr is captured to a file and read once it has stopped, so every line it ever wrote,
start-up and shutdown included, is checked.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from handlers.base import WebhookRequest
from hookline_testing import samples_for
from tests.integration._gateway_process import ROOT, clean_environment, run_gateway
from tests.integration._http_capture import Captured, capture_server

SENDGRID_SPEC, SENDGRID_KEY = samples_for("sendgrid").make_source("main")
MAILGUN_SPEC, MAILGUN_KEY = samples_for("mailgun").make_source("main")
POSTMARK_SPEC, POSTMARK_AUTH = samples_for("postmark").make_source("main")
ADMIN_TOKEN = "adm1n-T0ken-" + "9f3c" * 6
BEARER_TOKEN = "brevo-Bearer-" + "7d1e" * 6
#: the admin token reaches the gateway through ``token_env``, the Mailgun key through a file
ADMIN_TOKEN_VARIABLE = "LOGTEST_ADMIN_TOKEN"
#: a full address the tests put in a URL, a filter and a payload, and must never see logged
WATCHED_RECIPIENT = "jane.watched@example.org"
#: a downstream sink whose URL carries credentials (user info and a query token), as many
#: webhook consumers require, and whose deliveries are signed with a Standard Webhooks secret
SINK_PASSWORD = "sink-Pass-" + "41ab" * 5
SINK_QUERY_TOKEN = "sink-Query-" + "c0de" * 5
SINK_SECRET = "whsec_" + base64.b64encode(b"sink-signing-key-32-bytes-long!!").decode()
#: events the accepted webhooks carry (2 SendGrid, 1 Mailgun, 1 Postmark, 1 Brevo)
ACCEPTED_EVENTS = 5


def _sink_url(base: str) -> str:
    return base.replace("://", f"://hookline:{SINK_PASSWORD}@") + f"/hook?token={SINK_QUERY_TOKEN}"


def _config(db_url: str, workdir: Path, sink_base_url: str) -> dict[str, Any]:
    key_file = workdir / "mailgun.key"
    key_file.write_text(MAILGUN_KEY, encoding="utf-8")
    return {
        "database": {"url": db_url, "pool_min_size": 1, "pool_max_size": 4},
        "storage": {"data_dir": str(workdir / "data")},
        "logging": {"format": "json", "level": "info"},
        "admin": {"token_env": ADMIN_TOKEN_VARIABLE},
        "sources": [
            {"provider": "sendgrid", "name": "main", "signing_key": SENDGRID_SPEC.signing_key},
            {"provider": "mailgun", "name": "main", "signing_key_file": str(key_file)},
            {"provider": "postmark", "name": "main", "basic_auth": POSTMARK_AUTH},
            {"provider": "brevo", "name": "main", "bearer_token": BEARER_TOKEN},
        ],
        "sinks": [{"name": "crm", "url": _sink_url(sink_base_url), "secret": SINK_SECRET}],
    }


def _basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


async def _post(client: httpx.AsyncClient, path: str, request: WebhookRequest) -> int:
    response = await client.post(path, content=request.body, headers=dict(request.headers))
    return response.status_code


async def _traffic(client: httpx.AsyncClient) -> list[int]:
    """Good and bad requests for every kind of credential; the status codes, in order."""
    now = datetime.now(UTC)
    sendgrid_body = samples_for("sendgrid").example_body(2, seed=41, event="bounce")
    good_sendgrid = samples_for("sendgrid").signed_request(
        SENDGRID_SPEC, SENDGRID_KEY, sendgrid_body, now=now
    )
    forged_sendgrid = WebhookRequest(
        "POST", "", dict(good_sendgrid.headers), sendgrid_body.replace(b"user", b"USER")
    )
    good_mailgun = samples_for("mailgun").signed_request(
        MAILGUN_SPEC, MAILGUN_KEY, samples_for("mailgun").example_body(1, seed=42), now=now
    )
    wrong_key_mailgun = samples_for("mailgun").signed_request(
        MAILGUN_SPEC, "0" * 32, samples_for("mailgun").example_body(1, seed=43), now=now
    )
    postmark_body = samples_for("postmark").example_body(1, seed=44)
    headers = {"content-type": "application/json"}
    statuses = [
        await _post(client, "/webhooks/sendgrid/main", good_sendgrid),
        await _post(client, "/webhooks/sendgrid/main", forged_sendgrid),
        await _post(client, "/webhooks/mailgun/main", good_mailgun),
        await _post(client, "/webhooks/mailgun/main", wrong_key_mailgun),
    ]
    for credentials in (POSTMARK_AUTH, "postmark:not-the-password"):
        response = await client.post(
            "/webhooks/postmark/main",
            content=postmark_body,
            headers={**headers, "authorization": _basic(credentials)},
        )
        statuses.append(response.status_code)
    brevo_body = (
        samples_for("brevo")
        .example_body(1, seed=45)
        .replace(b"user45-0@example.com", WATCHED_RECIPIENT.encode())
    )
    assert WATCHED_RECIPIENT.encode() in brevo_body
    for token in (BEARER_TOKEN, "wrong-token"):
        response = await client.post(
            "/webhooks/brevo/main",
            content=brevo_body,
            headers={**headers, "authorization": f"Bearer {token}"},
        )
        statuses.append(response.status_code)
    for token in (ADMIN_TOKEN, "not-the-admin-token"):
        auth = {"authorization": f"Bearer {token}"}
        response = await client.get(f"/v1/recipients/{WATCHED_RECIPIENT}", headers=auth)
        statuses.append(response.status_code)
        response = await client.get(
            "/v1/events", params={"recipient": WATCHED_RECIPIENT}, headers=auth
        )
        statuses.append(response.status_code)
    return statuses


def _histogram_sums(exposition: str, name: str) -> dict[str, float]:
    """``name``'s ``_sum`` per provider label, from a Prometheus text exposition."""
    return {
        sample.labels["provider"]: sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == f"{name}_sum"
    }


async def _until_delivered(sink: Captured, count: int) -> None:
    """Until the sink has received ``count`` deliveries (so delivery logs are written)."""
    deadline = asyncio.get_running_loop().time() + 20
    while len(sink.requests) < count:
        assert asyncio.get_running_loop().time() < deadline, len(sink.requests)
        await asyncio.sleep(0.1)


async def test_gateway_logs_canonical_lines_without_secrets_or_recipients(
    fresh_db_url: str, tmp_path: Path
) -> None:
    """Good and bad webhooks (signature, HMAC key, basic auth, bearer token), admin calls
    (right and wrong token) and deliveries to a sink whose URL holds credentials: each
    webhook has one ``webhook.processed`` JSON line with
    provider, source, outcome, events, duration_ms and the trace/span ids; no signing key,
    password, token or database password, and no full recipient address, is ever written."""
    env = clean_environment(**{ADMIN_TOKEN_VARIABLE: ADMIN_TOKEN})
    with capture_server() as sink:
        config = _config(fresh_db_url, tmp_path, sink.url)
        async with (
            run_gateway(config, tmp_path, env) as gateway,
            httpx.AsyncClient(base_url=gateway.url, timeout=10.0) as client,
        ):
            statuses = await _traffic(client)
            await _until_delivered(sink, ACCEPTED_EVENTS)
            exposition = (await client.get("/metrics")).text
    assert statuses == [200, 401, 200, 401, 200, 401, 200, 401, 200, 200, 401, 401], statuses

    lines = gateway.json_lines()
    processed = [line for line in lines if line["event"] == "webhook.processed"]
    assert [(line["provider"], line["outcome"], line["status"]) for line in processed] == [
        ("sendgrid", "accepted", 200),
        ("sendgrid", "unauthorized", 401),
        ("mailgun", "accepted", 200),
        ("mailgun", "unauthorized", 401),
        ("postmark", "accepted", 200),
        ("postmark", "unauthorized", 401),
        ("brevo", "accepted", 200),
        ("brevo", "unauthorized", 401),
    ]
    for line in processed:
        assert line["level"] == "info"
        assert line["source"] == "main"
        assert isinstance(line["duration_ms"], int | float) and line["duration_ms"] > 0
        assert re.fullmatch(r"[0-9a-f]{32}", line["trace_id"]), line
        assert re.fullmatch(r"[0-9a-f]{16}", line["span_id"]), line
    assert [line["events"] for line in processed] == [2, 0, 1, 0, 1, 0, 1, 0]
    # duration_ms is the request's own elapsed time in milliseconds: per provider the logged
    # durations add up to what the request-duration histogram observed (in seconds), give or
    # take the log's rounding to 0.01 ms per line
    observed = _histogram_sums(exposition, "hookline_webhook_request_duration_seconds")
    for provider in ("sendgrid", "mailgun", "postmark", "brevo"):
        logged = sum(line["duration_ms"] for line in processed if line["provider"] == provider)
        assert abs(logged / 1000 - observed[provider]) <= 2 * 0.005 / 1000, (provider, logged)
    assert len({line["trace_id"] for line in processed}) == len(processed)
    failures = [line for line in lines if line["event"] == "webhook.auth_failed"]
    assert {(line["provider"], line["reason"]) for line in failures} == {
        ("sendgrid", "invalid"),
        ("mailgun", "invalid"),
        ("postmark", "invalid"),
        ("brevo", "invalid"),
    }

    stderr = gateway.stderr()
    db_password = fresh_db_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    secrets = {
        "sendgrid verification key": SENDGRID_SPEC.signing_key or "",
        "mailgun signing key": MAILGUN_KEY,
        "postmark basic auth password": POSTMARK_AUTH.split(":", 1)[1],
        "postmark basic auth header": _basic(POSTMARK_AUTH).split()[1],
        "brevo bearer token": BEARER_TOKEN,
        "sink URL password": SINK_PASSWORD,
        "sink URL query token": SINK_QUERY_TOKEN,
        "sink signing secret": SINK_SECRET.removeprefix("whsec_"),
        "admin token": ADMIN_TOKEN,
        "database password": db_password,
    }
    assert all(len(value) >= 12 for value in secrets.values())
    leaked = [name for name, value in secrets.items() if value in stderr]
    assert leaked == []

    sent = b"".join(
        [
            samples_for("sendgrid").example_body(2, seed=41, event="bounce"),
            samples_for("mailgun").example_body(1, seed=42),
            samples_for("postmark").example_body(1, seed=44),
        ]
    )
    recipients = [
        "user41-0@example.com",
        "user41-1@example.com",
        "user42@example.com",
        "user44@example.com",
    ]
    assert all(address.encode() in sent for address in recipients)
    recipients.append(WATCHED_RECIPIENT)
    assert [address for address in recipients if address in stderr] == []


_LOG_SCRIPT = """
import sys
import structlog
from observability.logging import configure_logging

level, mask = sys.argv[1], sys.argv[2] == "mask"
configure_logging(level, "json", mask_recipients=mask)
log = structlog.get_logger("hookline.test")
log.info("test.info", recipient="jane.doe@example.com", address="bob@example.net",
         email="not-an-address", signing_key="k-123", token="t-456", password="p-789")
log.debug("test.debug", recipient="jane.doe@example.com")
log.warning("test.warning", recipient="carol@example.com", bearer_token="b-000")
"""


def _log_lines(level: str, mask: bool) -> dict[str, dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-c", _LOG_SCRIPT, level, "mask" if mask else "plain"],
        cwd=ROOT,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    return {line["event"]: line for line in lines}


def test_recipients_are_masked_at_info_level_and_secrets_always_redacted() -> None:
    """With the default ``mask_recipients``, info and warning lines show ``j***@domain``;
    debug lines keep the full address (debugging needs it); secret-named fields are always
    ``[redacted]``."""
    lines = _log_lines("debug", mask=True)
    info = lines["test.info"]
    assert info["recipient"] == "j***@example.com"
    assert info["address"] == "b***@example.net"
    assert info["email"] == "***"
    assert (info["signing_key"], info["token"], info["password"]) == ("[redacted]",) * 3
    assert lines["test.warning"]["recipient"] == "c***@example.com"
    assert lines["test.warning"]["bearer_token"] == "[redacted]"
    assert lines["test.debug"]["recipient"] == "jane.doe@example.com"


def test_masking_can_be_turned_off_but_secrets_stay_redacted() -> None:
    """``[logging] mask_recipients = false`` logs full addresses at info level; secrets are
    still redacted, and the info level filters out debug lines."""
    lines = _log_lines("info", mask=False)
    assert lines["test.info"]["recipient"] == "jane.doe@example.com"
    assert lines["test.info"]["signing_key"] == "[redacted]"
    assert lines["test.warning"]["bearer_token"] == "[redacted]"
    assert "test.debug" not in lines
