"""One AMQP sink: each event published to RabbitMQ, counted delivered only when confirmed.

The body is the same envelope the HTTP sinks POST. The message is persistent, ``mandatory``,
and carries ``message_id`` (``webhook_id(sink, dedup_key)``: the same on every retry and
replay, so consumers deduplicate on it), ``content_type``, ``timestamp``, ``type``
(``email.<event_type>``), ``app_id`` and headers ``hookline-provider``,
``hookline-source`` and ``traceparent``. The routing key is the sink's template rendered
with the event's provider, source and event type.

The channel has publisher confirms on, so ``publish`` returns only once the broker has taken
responsibility for the message (for a durable queue: written it). What an attempt can see:

* ``Basic.Ack``: success.
* ``Basic.Return`` (no queue bound for the routing key): permanent, straight to the DLQ with
  the broker's reason; it is configuration, not the broker's health, so the breaker is left
  alone.
* ``Basic.Nack``, a closed channel or connection, a refused connection, a timeout: a failed
  attempt through the retry policy that counts against the sink's breaker.

The connection is opened on the first attempt and again on the attempt after it was found
closed (a broker restart) or a confirm timed out on it (a frozen broker, a cut without a
FIN), so a restarted broker is used again as soon as the breaker lets a probe through.
Nothing about the password reaches an error text or a log.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import aio_pika
import aiormq
import msgspec
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from gateway.amqp_target import RoutingKey, broker_url
from gateway.clock import Clock
from gateway.delivery.models import ClaimedRow, RowResult
from gateway.delivery.payload import envelope_type
from gateway.delivery.processors.base import AttemptGuard, Observed
from gateway.delivery.processors.sinks import links_to_stored_event
from gateway.delivery.retry import RetryPolicy, Verdict
from gateway.delivery.signing import webhook_id
from gateway.resilience import AsyncCircuitBreaker
from gateway.settings import SinkSettings
from observability.metrics import Metrics
from observability.redact import redact_url
from observability.tracing import exemplar

__all__ = ["APP_ID", "AmqpDeliverer"]

log = structlog.get_logger("hookline.delivery")

APP_ID = "hookline"
_ERROR_EXCERPT = 200


class _Origin(msgspec.Struct, frozen=True):
    provider: str = "unknown"
    source: str = "unknown"


class _Envelope(msgspec.Struct, frozen=True):
    data: _Origin = msgspec.field(default_factory=_Origin)


_origin_decoder = msgspec.json.Decoder(_Envelope)


class _Link:
    """One open connection, its confirming channel and the exchange published to."""

    __slots__ = ("channel", "connection", "exchange")

    def __init__(
        self, connection: AbstractConnection, channel: AbstractChannel, exchange: AbstractExchange
    ) -> None:
        self.connection = connection
        self.channel = channel
        self.exchange = exchange

    @property
    def usable(self) -> bool:
        return not (self.connection.is_closed or self.channel.is_closed)


class AmqpDeliverer:
    """Publishes claimed rows to one AMQP sink; returns what to write back, never raises.

    Satisfies ``processors.base.Deliverer``; admission, the breaker and the retry policy are
    the shared ``AttemptGuard``."""

    def __init__(
        self,
        settings: SinkSettings,
        *,
        breaker: AsyncCircuitBreaker,
        policy: RetryPolicy,
        metrics: Metrics,
        tracer: Tracer,
        clock: Clock,
    ) -> None:
        self.name = settings.name
        self.timeout = settings.timeout_seconds
        self.breaker = breaker
        self.guard = AttemptGuard(
            settings.name, breaker=breaker, policy=policy, metrics=metrics, clock=clock
        )
        self.metrics = metrics
        self.tracer = tracer
        self.exchange_name = settings.exchange
        self.exchange_type = aio_pika.ExchangeType(settings.exchange_type)
        self.routing_key = RoutingKey(settings.routing_key)
        self.target = redact_url(settings.url)
        self._url = broker_url(settings)
        self._password = settings.password
        self._link: _Link | None = None
        self._connecting = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"AmqpDeliverer({self.name!r}, {self.target!r})"

    async def deliver(self, row: ClaimedRow) -> RowResult:
        return await self.guard.run(row, self._attempt)

    async def close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            await _close_quietly(link.connection)
        if self._closing:
            await asyncio.gather(*self._closing)

    # -- one attempt ----------------------------------------------------------------------
    async def _attempt(self, row: ClaimedRow, now: datetime) -> Observed | None:
        origin = _origin(row.payload)
        routing_key = self.routing_key.render(
            provider=origin.provider, source=origin.source, event_type=row.event_type
        )
        message_id = webhook_id(self.name, row.dedup_key)
        with self.tracer.start_as_current_span(
            "delivery.attempt",
            kind=SpanKind.PRODUCER,
            links=links_to_stored_event(row.trace_context),
            attributes={
                "hookline.sink": self.name,
                "hookline.attempt": row.attempts + 1,
                "hookline.event_type": row.event_type,
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "publish",
                "messaging.message.id": message_id,
                "messaging.destination.name": self.exchange_name,
                "messaging.rabbitmq.destination.routing_key": routing_key,
            },
        ) as span:
            headers: dict[str, str] = {
                "hookline-provider": origin.provider,
                "hookline-source": origin.source,
            }
            propagate.inject(headers)
            message = aio_pika.Message(
                row.payload.encode(),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=message_id,
                timestamp=now,
                type=envelope_type(row.event_type),
                app_id=APP_ID,
                headers=dict(headers),
            )
            observed = await self.guard.call(lambda: self._send(message, routing_key))
            if observed is not None:
                self.metrics.delivery_duration.labels(self.name).observe(
                    observed.duration, exemplar()
                )
                if observed.verdict is not Verdict.SUCCESS:
                    span.set_status(Status(StatusCode.ERROR, observed.error))
        return observed

    async def _send(self, message: aio_pika.Message, routing_key: str) -> Observed:
        started = time.perf_counter()
        verdict, error, breaker_failure = await self._publish(message, routing_key)
        return Observed(
            verdict, None, error, breaker_failure, duration=time.perf_counter() - started
        )

    async def _publish(
        self, message: aio_pika.Message, routing_key: str
    ) -> tuple[Verdict, str | None, bool]:
        """Publish and wait for the broker's confirm: (verdict, error, breaker failure)."""
        link: _Link | None = None
        try:
            async with asyncio.timeout(self.timeout):
                link = await self._ready()
                await link.exchange.publish(message, routing_key, mandatory=True)
        except aiormq.exceptions.PublishError as exc:
            return Verdict.PERMANENT, self._unroutable(exc, routing_key), False
        except aiormq.exceptions.DeliveryError:
            return Verdict.RETRY, "the broker nacked the message", True
        except TimeoutError:
            # no confirm in time: a broker that stopped answering, or a connection cut
            # without a FIN; it is not trusted again, the next attempt reconnects
            self._forget(link, always=True)
            return Verdict.RETRY, f"timeout after {self.timeout:g}s", True
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # a real cancellation (shutdown): not this attempt's verdict
            self._forget(link)
            return Verdict.RETRY, "connection error: the channel closed", True
        except (
            aiormq.exceptions.AMQPError,
            aiormq.exceptions.ChannelInvalidStateError,  # closed between check and publish
            ConnectionError,
            OSError,
        ) as exc:
            self._forget(link)
            return Verdict.RETRY, self._connection_error(exc), True
        except Exception as exc:  # not the broker's health (a bug, a bad value): retry
            return Verdict.RETRY, f"publish error: {type(exc).__name__}", False
        return Verdict.SUCCESS, None, False

    async def _ready(self) -> _Link:
        """The open link, or a new one when there is none or it was found closed."""
        link = self._link
        if link is not None and link.usable:
            return link
        async with self._connecting:
            link = self._link
            if link is not None and link.usable:
                return link
            if link is not None:
                self._link = None
                self._close_later(link.connection)
            connection = await aio_pika.connect(self._url, timeout=self.timeout)
            try:
                channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
                if self.exchange_name:
                    exchange = await channel.declare_exchange(
                        self.exchange_name, self.exchange_type, durable=True
                    )
                else:
                    exchange = channel.default_exchange
            except BaseException:
                self._close_later(connection)
                raise
            self._link = _Link(connection, channel, exchange)
            log.info("delivery.amqp_connected", sink=self.name, broker=self.target)
            return self._link

    def _forget(self, link: _Link | None, *, always: bool = False) -> None:
        """Drop ``link`` when it closed (or ``always``), unless a newer one replaced it."""
        if link is None or self._link is not link or not (always or not link.usable):
            return
        self._link = None
        self._close_later(link.connection)

    def _close_later(self, connection: AbstractConnection) -> None:
        """Close in the background: closing waits for the broker, which may be the one that
        stopped answering; ``close()`` waits for these at shutdown."""
        closing = asyncio.create_task(_close_quietly(connection))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    def _unroutable(self, exc: aiormq.exceptions.PublishError, routing_key: str) -> str:
        delivery = exc.message.delivery if exc.message is not None else None
        code = getattr(delivery, "reply_code", None)
        text = getattr(delivery, "reply_text", None) or "returned"
        return (
            f"unroutable: {code} {text} (exchange '{self.exchange_name}', "
            f"routing key '{routing_key}')"
        )[:_ERROR_EXCERPT]

    def _connection_error(self, exc: BaseException) -> str:
        detail = str(exc).strip()
        if self._password:
            detail = detail.replace(self._password, "***")
        text = f"connection error: {type(exc).__name__}" + (f": {detail}" if detail else "")
        return text[:_ERROR_EXCERPT]


def _origin(payload: str) -> _Origin:
    """The provider and source of the event in ``payload`` (only those fields are decoded)."""
    try:
        return _origin_decoder.decode(payload).data
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _Origin()


async def _close_quietly(connection: AbstractConnection) -> None:
    try:
        await asyncio.wait_for(connection.close(), timeout=5)
    except Exception as exc:  # already closed, broker gone: nothing more to release
        log.debug("delivery.amqp_close_failed", error=type(exc).__name__)
