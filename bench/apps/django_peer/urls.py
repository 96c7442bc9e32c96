from __future__ import annotations

from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from django.http import HttpRequest, HttpResponse
from django.urls import path


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok")


# the same path as Hookline's, so that one set of recorded requests drives both
urlpatterns = [
    path("webhooks/postmark/main", PostmarkTrackingWebhookView.as_view()),
    path("healthz", healthz),
]
