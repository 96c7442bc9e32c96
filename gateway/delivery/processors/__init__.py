"""The processors that act on outbox rows: the suppression list and HTTP sinks."""

from gateway.delivery.processors.sinks import SinkDeliverer
from gateway.delivery.processors.suppressions import SuppressionProcessor

__all__ = ["SinkDeliverer", "SuppressionProcessor"]
