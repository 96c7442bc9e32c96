from __future__ import annotations

from django.apps import AppConfig


class PeerConfig(AppConfig):
    name = "bench.apps.django_peer"
    label = "django_peer"

    def ready(self) -> None:
        from anymail.signals import tracking

        from bench.apps.django_peer.receivers import store_event

        tracking.connect(store_event, dispatch_uid="peer-store-event")
