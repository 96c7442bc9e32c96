"""A floor, not a baseline: Litestar reading the raw body and checking SendGrid's ECDSA
signature, then answering 200 without parsing or storing anything. No gateway that verifies
signatures on this stack can be faster than this."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from litestar import Litestar, Request, Response, post

from handlers import sendgrid
from handlers.base import AuthError, SourceSpec, VerifyContext, WebhookRequest

SOURCE = SourceSpec(provider="sendgrid", name="main", signing_key=os.environ["BENCH_SIGNING_KEY"])


@post("/webhooks/sendgrid/main")
async def receive(request: Request[Any, Any, Any]) -> Response[bytes]:
    headers = {key: value for key, value in request.headers.items()}
    webhook = WebhookRequest("POST", "", headers, await request.body())
    try:
        await sendgrid.ADAPTER.verify(webhook, SOURCE, VerifyContext(now=datetime.now(UTC)))
    except AuthError:
        return Response(content=b"", status_code=401)
    return Response(content=b'{"accepted":1}', media_type="application/json")


app = Litestar([receive])
