"""The ``hookline worker`` process: background workers plus health and metrics endpoints."""

from __future__ import annotations

from litestar import Litestar

from gateway.app import create_app
from gateway.settings import Settings

__all__ = ["create_worker_app"]


def create_worker_app(settings: Settings) -> Litestar:
    return create_app(settings, role="worker")
