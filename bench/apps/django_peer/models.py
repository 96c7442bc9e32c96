from __future__ import annotations

from django.db import models


class TrackedEvent(models.Model):
    """One anymail tracking event, once per (message, event type)."""

    message_id = models.CharField(max_length=200)
    event_type = models.CharField(max_length=40)
    recipient = models.CharField(max_length=320, null=True)
    occurred_at = models.DateTimeField(null=True)
    esp_event = models.JSONField()

    class Meta:
        app_label = "django_peer"
        db_table = "peer_events"
        constraints = [
            models.UniqueConstraint(fields=["message_id", "event_type"], name="peer_event_once")
        ]
