"""The shared base of ESPs that sign nothing (Postmark, SparkPost, Mailjet, Brevo): their
requests are authenticated by the source's basic auth or bearer token alone."""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any, ClassVar

from handlers._batch import ItemNormalizer, normalize_batch, normalize_item
from handlers._common import decode_json, expect_object, require_transport_auth
from handlers.base import (
    Adapter,
    ParseResult,
    PayloadError,
    SourceSpec,
    VerifyContext,
    WebhookRequest,
)
from handlers.events import EmailEvent

__all__ = ["UnsignedAdapter", "UnsignedBatchAdapter"]


class UnsignedAdapter(Adapter):
    """Transport authentication only (refused at start-up without credentials unless
    ``allow_unauthenticated``)."""

    content_types: ClassVar[tuple[str, ...]] = ("application/json",)
    signs_requests: ClassVar[bool] = False
    required_fields: ClassVar[tuple[str, ...]] = ()

    async def verify(
        self, request: WebhookRequest, source: SourceSpec, context: VerifyContext
    ) -> None:
        require_transport_auth(self, request, source)


class UnsignedBatchAdapter(UnsignedAdapter):
    """Bodies that are one event object or a JSON array of them (Mailjet, Brevo)."""

    def parse(
        self, request: WebhookRequest, source: SourceSpec, received_at: datetime
    ) -> ParseResult:
        decoded = decode_json(request.body)
        non_tracking = self._non_tracking(decoded)
        if non_tracking is not None:
            return non_tracking
        if isinstance(decoded, dict):
            # one event is the whole body: malformed, it is a malformed body (400)
            return ParseResult(events=[self._event(decoded, "", source, received_at)])
        if not isinstance(decoded, list):
            raise PayloadError("body must be a JSON object or an array of events", "body")
        return normalize_batch(decoded, self._item_normalizer(source, received_at))

    def parse_item(self, item: Any, source: SourceSpec, received_at: datetime) -> list[EmailEvent]:
        return normalize_item(item, self._item_normalizer(source, received_at))

    def _item_normalizer(self, source: SourceSpec, received_at: datetime) -> ItemNormalizer:
        def normalize(item: Any, path: str) -> list[EmailEvent]:
            return [self._event(expect_object(item, path), path, source, received_at)]

        return normalize

    def _non_tracking(self, decoded: Any) -> ParseResult | None:
        """A body that is no tracking event (e.g. the ESP's inbound-parse payload at the
        tracking URL) as a ``ParseResult`` with a control message; None for events."""
        return None

    @abc.abstractmethod
    def _event(
        self, raw: dict[str, Any], path: str, source: SourceSpec, received_at: datetime
    ) -> EmailEvent:
        """One ESP event object (at JSON ``path``) as an ``EmailEvent``."""
