"""A unit of work: one database session, committed once when the work ends, and the
Celery jobs the work collected, published only *after* that commit (the pattern of
polar's JobQueueManager). A task therefore never runs before the rows it reads exist,
and a rolled-back request publishes nothing.

If the broker refuses a job, its compensation (``on_refused``) runs in a transaction of
its own — a post is failed, so a caller told "not scheduled" may post again without it
ever going out twice — and ``Unavailable`` goes up (a 503 for the API, a refusal shown
in the console). The API opens one unit per request (``deps.UnitDep``), the console one
per action, the worker one per task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.db import SessionMaker
from botmgr.errors import Unavailable

log = logging.getLogger(__name__)

Compensation = Callable[[AsyncSession], Awaitable[object]]
NOT_SCHEDULED = "task queue unavailable: the request is recorded but not scheduled; try again later"


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    args: list[Any]
    task_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    countdown: float | None = None
    on_refused: Compensation | None = None


class Publisher:
    """Sends jobs to the broker without blocking the event loop; a few quick retries
    ride out a broker blip, then the refusal goes up.

    One publish takes at most ``timeout`` seconds, retries included: a broker that
    stops answering (rather than refusing) would otherwise hold the caller for every
    retry's socket timeout. Past the deadline the job counts as refused (its
    compensation runs), even though the sending thread may still get it through once
    the broker answers again; that is why a refused post is failed, so the late copy
    finds it failed and sends nothing."""

    def __init__(self, celery: Celery, *, timeout: float = 10.0) -> None:
        self.celery = celery
        self.timeout = timeout

    def _send(self, job: Job) -> None:
        self.celery.send_task(
            job.name,
            args=job.args,
            kwargs=job.kwargs,
            task_id=job.task_id,
            countdown=job.countdown,
            retry=True,
            retry_policy={
                "max_retries": 2,
                "interval_start": 0.2,
                "interval_step": 0.5,
                "interval_max": 1,
            },
        )

    async def publish(self, job: Job) -> None:
        try:
            await asyncio.wait_for(asyncio.to_thread(self._send, job), self.timeout)
        except TimeoutError:
            raise ConnectionError(f"the broker did not answer within {self.timeout:g}s") from None


class UnitOfWork:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.jobs: list[Job] = []

    def enqueue(
        self,
        name: str,
        *args: Any,
        kwargs: dict[str, Any] | None = None,
        countdown: float | None = None,
        task_id: str | None = None,
        on_refused: Compensation | None = None,
    ) -> str:
        """Collect a job to publish after the commit; returns its task id."""
        task_id = task_id or str(uuid.uuid4())
        self.jobs.append(Job(name, list(args), task_id, kwargs or {}, countdown, on_refused))
        return task_id


async def publish(jobs: list[Job], publisher: Publisher, sessionmaker: SessionMaker) -> None:
    """Publish every job; a refused one runs its compensation, and Unavailable goes up
    once all were tried (the ones the broker took are not held back by one it refused)."""
    refused = 0
    for job in jobs:
        try:
            await publisher.publish(job)
        except Exception as exc:
            refused += 1
            log.error("could not enqueue %s %s: %s", job.name, job.task_id, type(exc).__name__)
            if job.on_refused is not None:
                # If the database is down too, the row stays as committed, with no task.
                with contextlib.suppress(Exception):
                    async with sessionmaker() as session:
                        await job.on_refused(session)
                        await session.commit()
    if refused:
        raise Unavailable(NOT_SCHEDULED)


@asynccontextmanager
async def unit_of_work(
    sessionmaker: SessionMaker, publisher: Publisher
) -> AsyncIterator[UnitOfWork]:
    """Commit when the block ends normally (then publish), roll back otherwise."""
    async with sessionmaker() as session:
        unit = UnitOfWork(session)
        yield unit
        await session.commit()
    await publish(unit.jobs, publisher, sessionmaker)
