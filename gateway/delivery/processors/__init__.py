"""The processors that act on outbox rows: the suppression list, and the sinks (HTTP, AMQP)
behind the ``Deliverer`` interface of ``base.py``."""

from gateway.delivery.processors.amqp import AmqpDeliverer
from gateway.delivery.processors.base import AttemptGuard, Deliverer, Observed
from gateway.delivery.processors.sinks import SinkDeliverer
from gateway.delivery.processors.suppressions import SuppressionProcessor

__all__ = [
    "AmqpDeliverer",
    "AttemptGuard",
    "Deliverer",
    "Observed",
    "SinkDeliverer",
    "SuppressionProcessor",
]
