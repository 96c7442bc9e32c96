"""What the gateway does with an ESP's control message (an SNS subscription or unsubscribe
confirmation, a topic validation, misrouted inbound traffic): count it, log it without its
secrets, keep the ones an operator may have to act on for ``/v1/control-messages``, and
auto-confirm SNS subscriptions where the source asks for it. Built once by ``gateway/app.py``;
the webhook route calls ``handle``."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from gateway.sns_certificates import SnsCertificates
from gateway.sources import SourceTable
from gateway.storage.errors import DB_ERRORS
from gateway.storage.store import EventStore
from handlers.base import ControlKind, ControlMessage
from observability.metrics import Metrics

__all__ = ["ControlMessages"]

log = structlog.get_logger("hookline.runtime")

#: control-message fields never logged: an SNS subscription token (alone or inside the
#: SubscribeURL) lets whoever reads the log confirm or re-subscribe the endpoint
_SECRET_DETAIL = frozenset({"token", "subscribe_url"})
#: control messages logged as warnings; the rest (misrouted inbound traffic, SES's topic
#: validation) are logged at info: nothing to do but know
_NEEDS_ATTENTION = frozenset(
    {ControlKind.SUBSCRIPTION_CONFIRMATION.value, ControlKind.UNSUBSCRIBE_CONFIRMATION.value}
)


class ControlMessages:
    def __init__(
        self,
        sources: SourceTable,
        store: EventStore,
        certificates: SnsCertificates,
        metrics: Metrics,
    ) -> None:
        self.sources = sources
        self.store = store
        self.certificates = certificates
        self.metrics = metrics
        self._confirmations: set[asyncio.Task[None]] = set()

    async def handle(self, provider: str, source: str, message: ControlMessage) -> None:
        """Count and log a non-event message; record SNS (un)subscriptions (for
        ``/v1/control-messages``) and auto-confirm subscriptions."""
        self.metrics.control_messages.labels(provider, message.kind).inc()
        entry = self.sources.get(provider, source)
        # SNS (un)subscriptions may need someone to act; the rest is only worth knowing
        level = log.warning if message.kind in _NEEDS_ATTENTION else log.info
        level(
            "webhook.control_message",
            provider=provider,
            source=source,
            kind=message.kind,
            detail={k: v for k, v in message.detail.items() if k not in _SECRET_DETAIL},
            auto_confirm=bool(entry and entry.spec.auto_confirm),
        )
        record_id: int | None = None
        # only what an operator may have to act on is kept for /v1/control-messages: a
        # misrouted inbound webhook would otherwise add a row per received email, forever
        if message.kind in _NEEDS_ATTENTION:
            try:
                record_id = await self.store.record_control_message(
                    provider, source, message.kind, dict(message.detail), message.confirm_url
                )
            except DB_ERRORS as exc:
                log.error("webhook.control_message_not_recorded", error=type(exc).__name__)
        if entry is not None and entry.spec.auto_confirm and message.confirm_url:
            task = asyncio.create_task(self._confirm(message.confirm_url, record_id))
            self._confirmations.add(task)
            task.add_done_callback(self._confirmations.discard)

    async def _confirm(self, url: str, record_id: int | None) -> None:
        error = await self.certificates.confirm(url)
        log.info(
            "sns.subscription_confirmed" if error is None else "sns.confirm_failed", error=error
        )
        if record_id is not None:
            with contextlib.suppress(*DB_ERRORS):
                await self.store.mark_control_confirmed(record_id, error)

    async def close(self) -> None:
        """Cancel confirmations still in flight (at shutdown)."""
        for task in list(self._confirmations):
            task.cancel()
