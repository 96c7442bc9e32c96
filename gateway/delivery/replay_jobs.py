"""Bulk DLQ replay jobs, kept in PostgreSQL (``dlq_replay_jobs``) so that every replica sees
every job: the one that runs it writes its progress there after each chunk, any replica
reads it. A job whose process stopped mid-way is marked failed (each chunk is atomic, so a
new bulk replay of the same range picks up the rest)."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import msgspec

from gateway.delivery.dlq import RangeSelection

__all__ = ["ReplayJob", "ReplayJobs"]


class ReplayJob(msgspec.Struct, kw_only=True):
    job_id: str
    sink: str
    since: datetime | None
    until: datetime | None
    matched: int
    replayed: int = 0
    #: "running", "done" or "failed"
    status: str = "running"
    error: str | None = None


_COLUMNS = "job_id, sink, since, until, matched, replayed, status, error"


class ReplayJobs:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(self, selection: RangeSelection) -> ReplayJob:
        job = ReplayJob(
            job_id=uuid.uuid4().hex,
            sink=selection.sink,
            since=selection.since,
            until=selection.until,
            matched=selection.count,
        )
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO dlq_replay_jobs (job_id, sink, since, until, matched) "
                "VALUES ($1, $2, $3, $4, $5)",
                job.job_id,
                job.sink,
                job.since,
                job.until,
                job.matched,
            )
        return job

    async def update(
        self, job_id: str, replayed: int, status: str = "running", error: str | None = None
    ) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                "UPDATE dlq_replay_jobs SET replayed = $2, status = $3, error = $4, "
                "updated_at = now() WHERE job_id = $1",
                job_id,
                replayed,
                status,
                error,
            )

    async def get(self, job_id: str) -> ReplayJob | None:
        async with self.pool.acquire() as conn:
            record = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM dlq_replay_jobs WHERE job_id = $1",  # noqa: S608
                job_id,
            )
        return ReplayJob(**dict(record)) if record is not None else None
