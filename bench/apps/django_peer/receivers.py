from __future__ import annotations

from typing import Any

from bench.apps.django_peer.models import TrackedEvent


def store_event(sender: Any, event: Any, esp_name: str, **kwargs: Any) -> None:
    """The receiver the anymail docs suggest: store each tracking event once."""
    TrackedEvent.objects.get_or_create(
        message_id=event.message_id,
        event_type=event.event_type,
        defaults={
            "recipient": event.recipient,
            "occurred_at": event.timestamp,
            "esp_event": event.esp_event,
        },
    )
