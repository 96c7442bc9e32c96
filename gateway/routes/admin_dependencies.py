"""The services the admin API acts on, as Litestar dependencies.

``gateway/app.py`` builds every service once (in the lifespan, with the runtime) and
registers these providers as app-level ``dependencies``; a route handler receives a service
by naming it as a parameter (``dlq: DeadLetterQueue``). A provider only hands out the object
the runtime already holds: nothing is built per request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
from litestar.datastructures import State
from litestar.di import Provide

from gateway.delivery.bulk_replays import BulkReplays
from gateway.delivery.dlq import DeadLetterQueue
from gateway.delivery.replay_jobs import ReplayJobs
from gateway.delivery.service import DeliveryService
from gateway.delivery.suppression_list import SuppressionList
from gateway.ingest.isolation import IsolatingWriter
from gateway.query.reads import ReadService
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.sources import SourceTable
from gateway.storage.quarantine import QuarantineStore

__all__ = ["admin_dependencies"]


def _runtime(state: State) -> Runtime:
    runtime: Runtime = state.runtime
    return runtime


def provide_settings(state: State) -> Settings:
    return _runtime(state).settings


def provide_pool(state: State) -> asyncpg.Pool:
    return _runtime(state).database.pool


def provide_sources(state: State) -> SourceTable:
    return _runtime(state).sources


def provide_reads(state: State) -> ReadService:
    return _runtime(state).reads


def provide_quarantine(state: State) -> QuarantineStore:
    return _runtime(state).quarantine


def provide_writer(state: State) -> IsolatingWriter | None:
    return _runtime(state).ingestor.writer


def provide_delivery(state: State) -> DeliveryService:
    return _runtime(state).delivery


def provide_dlq(state: State) -> DeadLetterQueue:
    return _runtime(state).delivery.dlq


def provide_replay_jobs(state: State) -> ReplayJobs:
    return _runtime(state).delivery.replay_jobs


def provide_bulk_replays(state: State) -> BulkReplays:
    return _runtime(state).delivery.bulk_replays


def provide_suppression_list(state: State) -> SuppressionList:
    return _runtime(state).delivery.suppression_list


_PROVIDERS: dict[str, Callable[[State], Any]] = {
    "settings": provide_settings,
    "pool": provide_pool,
    "sources": provide_sources,
    "reads": provide_reads,
    "quarantine": provide_quarantine,
    "writer": provide_writer,
    "delivery": provide_delivery,
    "dlq": provide_dlq,
    "replay_jobs": provide_replay_jobs,
    "bulk_replays": provide_bulk_replays,
    "suppression_list": provide_suppression_list,
}


def admin_dependencies() -> dict[str, Provide]:
    """The app-level ``dependencies`` of ``gateway/app.py``: parameter name → provider."""
    return {name: Provide(provider, sync_to_thread=False) for name, provider in _PROVIDERS.items()}
