"""Bulk DLQ replays running in this process: started by ``POST /v1/dlq/replay``, cancelled
at shutdown (each chunk is atomic). Their state is in PostgreSQL (``ReplayJobs``), for every
replica to read; this object only holds the tasks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from gateway.delivery.dlq import DeadLetterQueue, RangeSelection
from gateway.delivery.replay_jobs import ReplayJob, ReplayJobs

__all__ = ["BulkReplays"]

log = structlog.get_logger("hookline.admin")


class BulkReplays:
    def __init__(
        self,
        dlq: DeadLetterQueue,
        jobs: ReplayJobs,
        on_done: Callable[[], Awaitable[None]],
    ) -> None:
        self.dlq = dlq
        self.jobs = jobs
        #: called after each job (the delivery gauges are refreshed)
        self.on_done = on_done
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self, selection: RangeSelection) -> ReplayJob:
        job = await self.jobs.create(selection)
        task = asyncio.create_task(self._run(selection, job))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return job

    async def _run(self, selection: RangeSelection, job: ReplayJob) -> None:
        async def progress(replayed: int) -> None:
            job.replayed = replayed
            await self.jobs.update(job.job_id, replayed)

        try:
            job.replayed = await self.dlq.replay_range(selection, progress=progress)
            job.status = "done"
        except asyncio.CancelledError:
            job.status, job.error = "failed", "interrupted: the process stopped"
            with contextlib.suppress(Exception):
                await self.jobs.update(job.job_id, job.replayed, job.status, job.error)
            raise
        except Exception as exc:
            job.status, job.error = "failed", type(exc).__name__
            log.error("dlq.bulk_replay_failed", job_id=job.job_id, error=job.error)
        else:
            log.info("dlq.bulk_replayed", job_id=job.job_id, sink=job.sink, count=job.replayed)
        with contextlib.suppress(Exception):
            await self.jobs.update(job.job_id, job.replayed, job.status, job.error)
        await self.on_done()

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
