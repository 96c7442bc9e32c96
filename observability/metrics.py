"""Every Hookline metric, defined once.

Labels come only from bounded sets: provider, source (from config), event_type, outcome,
sink (from config), breaker, state, stage, reason. Never a recipient, message id, URL or
exception text. ``preinitialise`` creates the known label combinations at start-up so that
dashboards and ``rate()`` never see gaps.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from handlers.base import ControlKind
from handlers.events import BounceClass, EventType
from observability._prom_compat import observe_many

__all__ = ["Metrics", "observe_many"]

#: receive -> ack; the tail matters most, so the buckets are dense below 100 ms
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: ESP event time -> received: seconds to a day (ESPs batch and retry)
DELAY_BUCKETS = (1, 5, 15, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
#: seconds to a day, with the SLO thresholds (300 s for storage freshness and for delivery)
#: as boundaries: a burn-rate rule can only count events under a bucket boundary
SLO_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)

#: the ``source`` label of a request that matched no configured source (never the sender's word)
UNKNOWN_SOURCE = "unknown"
#: outcomes of a webhook request (bounded)
REQUEST_OUTCOMES = (
    "accepted",
    "spooled",
    "unauthorized",
    "bad_request",
    "not_found",
    "too_large",
    "disconnected",
    "timeout",
    "unsupported_media_type",
    "rate_limited",
    "unavailable",
    "control",
)
CONTROL_KINDS = tuple(kind.value for kind in ControlKind)
SIGNATURE_FAILURE_REASONS = ("missing", "invalid", "stale", "replayed", "untrusted")
DELIVERY_OUTCOMES = ("success", "retry", "permanent_failure", "dead_lettered", "breaker_open")
SUPPRESSION_REASONS = ("hard_bounce", "complaint", "unsubscribe", "soft_bounce", "manual")
BREAKER_STATES = {"closed": 0, "half-open": 1, "open": 2}
#: where a record was quarantined: an adapter rejected the item, or PostgreSQL refused it
QUARANTINE_STAGES = ("parse", "store")
#: why (bounded): gateway/storage/data_errors.py's codes, and "invalid_item" for parse
QUARANTINE_REASONS = ("invalid_item", "value_too_large", "invalid_text", "invalid_value")
#: breaker label values: "storage", "sns:<SNS host>" (at most 32, then "sns:other") and
#: "sink:<name>" per sink


class Metrics:
    """The metric objects, bound to one registry (tests may build their own)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.registry = registry
        # -- ingest ---------------------------------------------------------------------
        self.webhook_requests = Counter(
            "hookline_webhook_requests",
            "Webhook requests by provider, configured source (else unknown) and outcome.",
            ["provider", "source", "outcome"],
            registry=registry,
        )
        self.webhook_request_duration = Histogram(
            "hookline_webhook_request_duration_seconds",
            "Webhook request latency from receive to ack.",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.events_received = Counter(
            "hookline_events_received",
            "Distinct email events stored, by provider, configured source and normalized type.",
            ["provider", "source", "event_type"],
            registry=registry,
        )
        self.bounces = Counter(
            "hookline_bounces",
            "Distinct bounce events by source and bounce class (hard, soft, undetermined).",
            ["provider", "source", "bounce_class"],
            registry=registry,
        )
        self.events_duplicate = Counter(
            "hookline_events_duplicate",
            "Events received again (ESP redelivery) and not stored twice.",
            ["provider"],
            registry=registry,
        )
        self.event_delay = Histogram(
            "hookline_event_delay_seconds",
            "Delay between the ESP's event time and its receipt.",
            ["provider"],
            buckets=DELAY_BUCKETS,
            registry=registry,
        )
        self.signature_failures = Counter(
            "hookline_signature_failures",
            "Requests refused because authentication failed, by reason.",
            ["provider", "reason"],
            registry=registry,
        )
        self.replays_rejected = Counter(
            "hookline_replays_rejected",
            "Spooled events not stored because their request reused a signature nonce "
            "with other content (found when the nonce journal was merged after an outage).",
            ["provider"],
            registry=registry,
        )
        self.control_messages = Counter(
            "hookline_control_messages",
            "Non-event messages from ESPs (e.g. SNS subscription confirmations).",
            ["provider", "kind"],
            registry=registry,
        )
        # -- storage --------------------------------------------------------------------
        self.storage_flush_duration = Histogram(
            "hookline_storage_flush_duration_seconds",
            "Duration of one group-commit flush to PostgreSQL.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.storage_batch_size = Histogram(
            "hookline_storage_batch_size",
            "Events written per group-commit flush.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.storage_flush_failures = Counter(
            "hookline_storage_flush_failures",
            "Group-commit flushes that failed (events then went to the spool or were refused).",
            registry=registry,
        )
        self.ingest_queue_events = Gauge(
            "hookline_ingest_queue_events",
            "Events waiting in the in-process batcher.",
            registry=registry,
        )
        # -- spool ----------------------------------------------------------------------
        self.spool_events = Gauge(
            "hookline_spool_events", "Events in the local durable spool.", registry=registry
        )
        self.spool_bytes = Gauge(
            "hookline_spool_bytes", "Bytes used by the local spool.", registry=registry
        )
        self.spool_drained = Counter(
            "hookline_spool_drained_events",
            "Events moved from the spool into PostgreSQL.",
            registry=registry,
        )
        self.spool_residence = Histogram(
            "hookline_spool_residence_seconds",
            "From receipt to storage in PostgreSQL, for events that went through the spool.",
            buckets=SLO_BUCKETS,
            registry=registry,
        )
        self.spool_corrupt_records = Counter(
            "hookline_spool_corrupt_records",
            "Spool records that failed their checksum and were set aside.",
            registry=registry,
        )
        self.spool_oldest_age = Gauge(
            "hookline_spool_oldest_event_age_seconds",
            "Age of the oldest record still in the local spool (0 when it is empty).",
            registry=registry,
        )
        self.events_quarantined = Counter(
            "hookline_events_quarantined",
            "Records kept in the quarantine table instead of being stored as events.",
            ["provider", "stage", "reason"],
            registry=registry,
        )
        # -- storage connection ---------------------------------------------------------
        self.storage_connected = Gauge(
            "hookline_storage_connected",
            "1 while PostgreSQL answers and its schema is ready; 0 before the first "
            "connection (a start with the database down) and while it is unreachable.",
            registry=registry,
        )
        self.storage_unreachable_seconds = Gauge(
            "hookline_storage_unreachable_seconds",
            "Seconds since PostgreSQL was last reachable (since the process started when it "
            "never was); 0 while it is reachable.",
            registry=registry,
        )
        # -- breakers -------------------------------------------------------------------
        self.breaker_state = Gauge(
            "hookline_circuit_breaker_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
            ["breaker"],
            registry=registry,
        )
        self.breaker_transitions = Counter(
            "hookline_circuit_breaker_transitions",
            "Circuit breaker state changes.",
            ["breaker", "to_state"],
            registry=registry,
        )
        # -- delivery -------------------------------------------------------------------
        self.outbox_lag = Gauge(
            "hookline_outbox_lag_seconds",
            "Age of the oldest outbox entry that is due and not yet processed.",
            registry=registry,
        )
        self.delivery_attempts = Counter(
            "hookline_delivery_attempts",
            "Delivery attempts to downstream sinks, by outcome.",
            ["sink", "outcome"],
            registry=registry,
        )
        self.delivery_end_to_end = Histogram(
            "hookline_delivery_end_to_end_seconds",
            "From storage (outbox row) to a successful delivery to a sink, retries included.",
            ["sink"],
            buckets=SLO_BUCKETS,
            registry=registry,
        )
        self.delivery_duration = Histogram(
            "hookline_delivery_duration_seconds",
            "Duration of one delivery attempt to a sink.",
            ["sink"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.delivery_retry_queue = Gauge(
            "hookline_delivery_retry_queue_events",
            "Deliveries waiting for a retry, per sink.",
            ["sink"],
            registry=registry,
        )
        self.dlq_events = Gauge(
            "hookline_dlq_events",
            "Deliveries in the dead-letter queue, per sink.",
            ["sink"],
            registry=registry,
        )
        self.dlq_added = Counter(
            "hookline_dlq_added",
            "Deliveries moved to the dead-letter queue.",
            ["sink"],
            registry=registry,
        )
        # -- read side ------------------------------------------------------------------
        self.rollup_pending_rows = Gauge(
            "hookline_rollup_pending_rows",
            "Rollup tallies waiting for the compactor (read from the database).",
            registry=registry,
        )
        self.activity_unfolded_seconds = Gauge(
            "hookline_activity_unfolded_seconds",
            "Time up to the last UTC midnight not yet folded into recipient activity.",
            registry=registry,
        )
        self.suppressions_added = Counter(
            "hookline_suppressions_added",
            "Addresses added to the suppression list, by reason.",
            ["reason"],
            registry=registry,
        )

    def preinitialise(
        self,
        providers: Iterable[str],
        sinks: Iterable[str] = (),
        breakers: Iterable[str] = ("storage",),
        sources: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Create every known label combination at zero.

        ``sources`` are the configured (provider, source name) pairs: the only values the
        ``source`` label takes besides ``unknown`` (a request that matched no configured source)."""
        providers_list = list(providers)
        for provider in providers_list:
            self.webhook_requests.labels(provider, UNKNOWN_SOURCE, "not_found")
            self.webhook_request_duration.labels(provider)
            self.events_duplicate.labels(provider)
            self.event_delay.labels(provider)
            for reason in SIGNATURE_FAILURE_REASONS:
                self.signature_failures.labels(provider, reason)
            if provider == "ses":
                for kind in CONTROL_KINDS:
                    self.control_messages.labels(provider, kind)
            if provider == "mailgun":  # the provider whose requests carry a nonce
                self.replays_rejected.labels(provider)
            # any ESP's inbound traffic can be misrouted to its tracking URL (dashboard panel)
            self.control_messages.labels(provider, ControlKind.INBOUND_MESSAGE.value)
            self.control_messages.labels(provider, ControlKind.INBOUND_EVENT.value)
        for provider, source in sources:
            for outcome in REQUEST_OUTCOMES:
                self.webhook_requests.labels(provider, source, outcome)
            for event_type in EventType:
                self.events_received.labels(provider, source, event_type.value)
            for bounce_class in BounceClass:
                self.bounces.labels(provider, source, bounce_class.value)
        for sink in sinks:
            for outcome in DELIVERY_OUTCOMES:
                self.delivery_attempts.labels(sink, outcome)
            self.delivery_duration.labels(sink)
            self.delivery_end_to_end.labels(sink)
            self.delivery_retry_queue.labels(sink).set(0)
            self.dlq_events.labels(sink).set(0)
            self.dlq_added.labels(sink)
        for reason in SUPPRESSION_REASONS:
            self.suppressions_added.labels(reason)
        for provider in providers_list:
            self.events_quarantined.labels(provider, "parse", "invalid_item")
            for reason in QUARANTINE_REASONS[1:]:
                self.events_quarantined.labels(provider, "store", reason)
        for breaker in breakers:
            self.breaker_state.labels(breaker).set(0)
            for state in BREAKER_STATES:
                self.breaker_transitions.labels(breaker, state)
