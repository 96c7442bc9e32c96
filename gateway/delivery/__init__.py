"""Acting on events: the outbox, its dispatcher, the processors (suppression list, signed
HTTP sinks and AMQP sinks with retries and circuit breakers) and the dead-letter queue.

Flow: the ingest transaction writes outbox rows for every new event (``OutboxWriter``);
dispatchers claim due rows (``OutboxQueue``), run the suppressions processor or deliver to
sinks (a ``Deliverer`` per sink: ``SinkDeliverer`` for HTTP, ``AmqpDeliverer`` for
RabbitMQ; see ``processors/base.py``), and write back success, a retry (``RetryPolicy``), a deferral
while the sink's breaker is open, or a move to the dead-letter queue (``DeadLetterQueue``).
"""

from gateway.delivery.dispatcher import Dispatcher
from gateway.delivery.dlq import DeadLetterQueue, DlqEntry
from gateway.delivery.gauges import GaugeRefresher
from gateway.delivery.outbox import OutboxWriter
from gateway.delivery.queue import OutboxQueue
from gateway.delivery.retry import RetryPolicy
from gateway.delivery.service import DeliveryService
from gateway.delivery.signing import WebhookSigner, webhook_id
from gateway.delivery.suppression_list import SuppressionEntry, SuppressionList

__all__ = [
    "DeadLetterQueue",
    "DeliveryService",
    "Dispatcher",
    "DlqEntry",
    "GaugeRefresher",
    "OutboxQueue",
    "OutboxWriter",
    "RetryPolicy",
    "SuppressionEntry",
    "SuppressionList",
    "WebhookSigner",
    "webhook_id",
]
