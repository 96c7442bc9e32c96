"""Small synthetic webhook traffic for telemetry tests: signed SendGrid batches and signed
SES (SNS) notifications of several event types, an SNS subscription confirmation, forged
signatures and requests to unknown sources."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from handlers.base import SourceSpec
from hookline_testing import samples_for

__all__ = ["SyntheticLoad", "source_config"]

#: SendGrid event names sent round-robin, so every dashboard row has data
SENDGRID_MIX = ("delivered", "delivered", "delivered", "bounce", "open", "click", "spamreport")
SES_MIX = ("Delivery", "Delivery", "Bounce", "Open", "Click", "Complaint")


def source_config(spec: SourceSpec) -> dict[str, Any]:
    """The ``[[sources]]`` entry for a test source (SendGrid key, or SES pinned cert)."""
    entry: dict[str, Any] = {"provider": spec.provider, "name": spec.name}
    if spec.signing_key is not None:
        entry["signing_key"] = spec.signing_key
    if spec.topic_arns:
        entry["topic_arns"] = list(spec.topic_arns)
        entry["sns_certificates"] = dict(spec.sns_certificates)
    return entry


@dataclass
class SyntheticLoad:
    """Sends traffic to a gateway and counts the status codes it answered."""

    client: httpx.AsyncClient
    sendgrid_source: tuple[SourceSpec, Any] = field(
        default_factory=lambda: samples_for("sendgrid").make_source("main")
    )
    ses_source: tuple[SourceSpec, Any] = field(
        default_factory=lambda: samples_for("ses").make_source("main")
    )
    statuses: Counter[int] = field(default_factory=Counter)
    _seed: int = 0

    @property
    def sources(self) -> list[dict[str, Any]]:
        return [source_config(self.sendgrid_source[0]), source_config(self.ses_source[0])]

    def _next_seed(self) -> int:
        self._seed += 1
        return self._seed

    async def _post(self, path: str, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
        response = await self.client.post(path, content=body, headers=dict(headers))
        self.statuses[response.status_code] += 1
        return response

    async def sendgrid(self, count: int = 3, event: str = "delivered") -> httpx.Response:
        """A correctly signed SendGrid batch of ``count`` new ``event`` events."""
        spec, key = self.sendgrid_source
        body = samples_for("sendgrid").example_body(count, seed=self._next_seed(), event=event)
        request = samples_for("sendgrid").signed_request(spec, key, body, now=datetime.now(UTC))
        return await self._post(f"/webhooks/sendgrid/{spec.name}", request.body, request.headers)

    async def forged(self) -> httpx.Response:
        """A SendGrid batch altered after signing (401, reason ``invalid``)."""
        spec, key = self.sendgrid_source
        body = samples_for("sendgrid").example_body(1, seed=self._next_seed())
        request = samples_for("sendgrid").signed_request(spec, key, body, now=datetime.now(UTC))
        forged = request.body.replace(b"user", b"USER")
        return await self._post(f"/webhooks/sendgrid/{spec.name}", forged, request.headers)

    async def unknown_source(self) -> httpx.Response:
        """A request to a source that is not configured (404)."""
        body = samples_for("sendgrid").example_body(1, seed=self._next_seed())
        return await self._post(
            "/webhooks/sendgrid/no-such-source", body, {"content-type": "application/json"}
        )

    async def ses(self, event: str = "Delivery") -> httpx.Response:
        """A signed SNS notification carrying one SES event (``SubscriptionConfirmation``
        makes a control message instead)."""
        spec, material = self.ses_source
        body = samples_for("ses").example_body(
            1, seed=self._next_seed(), event=event, now=datetime.now(UTC)
        )
        request = samples_for("ses").signed_request(spec, material, body, now=datetime.now(UTC))
        return await self._post(f"/webhooks/ses/{spec.name}", request.body, request.headers)

    async def round(self, index: int) -> None:
        """One round of the mix: a SendGrid batch and an SES event of the next types, and
        every third round a forged signature and an unknown source."""
        await self.sendgrid(3, SENDGRID_MIX[index % len(SENDGRID_MIX)])
        await self.ses(SES_MIX[index % len(SES_MIX)])
        if index % 3 == 0:
            await self.forged()
            await self.unknown_source()
