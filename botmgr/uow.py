"""A unit of work: one database session, committed once when the work ends, and the
Celery jobs the work collected, published only *after* that commit (the pattern of
polar's JobQueueManager). A task therefore never runs before the rows it reads exist,
and a rolled-back request publishes nothing.

If the broker refuses a job, its compensation (``on_refused``) runs in a transaction of
its own — a post is failed, so a caller told "not scheduled" may post again without it
ever going out twice — and ``Unavailable`` goes up (a 503 for the API, a refusal shown
in the console). The API opens one unit per request (``deps.UnitDep``), the console one
per action, the worker one per task.

A job that must wait longer than the publisher's ``max_countdown`` is not given to the
broker with a long countdown (Redis would hand it out again every visibility timeout,
and a worker holding it in memory would sit on it): it becomes a ``DeferredJob`` row in
the same transaction, and the reconciler publishes it when it is due.

A job may be ``optional`` (a webhook delivery): one the broker refuses runs its
compensation but does not make the unit's work fail — the reconciler publishes it later.
The unit is reachable from its session (``unit_of``), so a function that only has the
session (webhooks/events.py) still collects its jobs in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Celery
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.audit.context import Actor, bind, mark_not_scheduled, written_ids
from botmgr.db import SessionMaker
from botmgr.errors import Unavailable
from botmgr.fleet.routing import Router
from botmgr.models import DeferredJob

log = logging.getLogger(__name__)
HOPS_HEADER = "botmgr_hops"
#: The bot whose owner runs the task: the worker checks it before any database work.
BOT_HEADER = "botmgr_bot"

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
    retries: int = 0  # what the task's request.retries says when it runs
    bot: int | None = None  # the bot whose owner must run it (fleet/routing.py)
    queue: str | None = None  # a worker's own queue, when already known (a forward)
    hops: int = 0  # times the task was forwarded between workers (fleet/leases.py)
    optional: bool = False  # refused: compensated, but not the unit's failure

    def headers(self) -> dict[str, int]:
        headers = {HOPS_HEADER: self.hops} if self.hops else {}
        if self.bot is not None:
            headers[BOT_HEADER] = self.bot
        return headers


class Publisher:
    """Sends jobs to the broker without blocking the event loop; a few quick retries
    ride out a broker blip, then the refusal goes up.

    One publish takes at most ``timeout`` seconds, retries included: a broker that
    stops answering (rather than refusing) would otherwise hold the caller for every
    retry's socket timeout. Past the deadline the job counts as refused (its
    compensation runs), even though the sending thread may still get it through once
    the broker answers again; that is why a refused post is failed, so the late copy
    finds it failed and sends nothing."""

    #: The longest countdown given to the broker; a longer wait is a DeferredJob row.
    max_countdown: float = 30.0

    def __init__(
        self,
        celery: Celery,
        *,
        timeout: float = 10.0,
        max_countdown: float = 30.0,
        router: Router | None = None,
    ) -> None:
        self.celery = celery
        self.timeout = timeout
        self.max_countdown = max_countdown
        self.router = router

    def _send(self, job: Job) -> None:
        queue = job.queue
        if queue is None and job.bot is not None and self.router is not None:
            queue = self.router.queue_for(job.bot)
        self.celery.send_task(
            job.name,
            args=job.args,
            kwargs=job.kwargs,
            task_id=job.task_id,
            countdown=job.countdown,
            retries=job.retries,
            queue=queue,  # None: the shared queue (task_default_queue)
            headers=job.headers() or None,
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


#: Where a unit of work leaves itself in its session's ``info`` (``unit_of``).
_UNIT = "botmgr.unit"


def unit_of(session: AsyncSession) -> UnitOfWork | None:
    """The unit of work ``session`` belongs to; None for a session of its own (a fleet
    job's share, a compensation)."""
    unit = session.info.get(_UNIT)
    return unit if isinstance(unit, UnitOfWork) else None


class UnitOfWork:
    def __init__(
        self, session: AsyncSession, *, max_countdown: float = 30.0, actor: Actor | None = None
    ) -> None:
        self.session = session
        session.info[_UNIT] = self
        if actor is not None:  # who the audit events of this unit name (audit/context.py)
            bind(session, actor)
        self.max_countdown = max_countdown
        self.jobs: list[Job] = []
        self.refusal_compensations: list[Compensation] = []

    def enqueue(
        self,
        name: str,
        *args: Any,
        kwargs: dict[str, Any] | None = None,
        countdown: float | None = None,
        task_id: str | None = None,
        on_refused: Compensation | None = None,
        retries: int = 0,
        bot: int | None = None,
        queue: str | None = None,
        optional: bool = False,
    ) -> str:
        """Collect a job to publish after the commit (or, if it must wait longer than a
        short countdown, a DeferredJob row committed with the work); its task id.
        ``bot``: the job is for that bot's owner (routed to its queue); ``queue``: for
        that worker's queue (a bot's owner named by NotOwner)."""
        task_id = task_id or str(uuid.uuid4())
        if countdown is not None and countdown > self.max_countdown:
            due = datetime.now(UTC) + timedelta(seconds=countdown)
            self.defer(name, list(args), kwargs or {}, task_id=task_id, due=due, retries=retries)
            return task_id
        job = Job(
            name,
            list(args),
            task_id,
            kwargs or {},
            countdown,
            on_refused,
            retries,
            bot,
            queue,
            optional=optional,
        )
        self.jobs.append(job)
        return task_id

    def defer(
        self,
        name: str,
        args: list[Any],
        kwargs: dict[str, Any],
        *,
        task_id: str,
        due: datetime,
        retries: int = 0,
    ) -> None:
        """Store a job to be published at ``due`` by the reconciler."""
        self.session.add(
            DeferredJob(
                name=name, args=args, kwargs=kwargs, task_id=task_id, retries=retries, due_at=due
            )
        )

    def if_refused(self, compensation: Compensation) -> None:
        """Run ``compensation`` (in a transaction of its own) if the broker refuses any
        job of this unit: for a row that stands for the whole request, such as its
        idempotency key, which must not replay an answer the caller never got."""
        self.refusal_compensations.append(compensation)


async def _compensate(compensation: Compensation, sessionmaker: SessionMaker) -> None:
    # If the database is down too, the rows stay as committed, with no task.
    with contextlib.suppress(Exception):
        async with sessionmaker() as session:
            await compensation(session)
            await session.commit()


async def publish(unit: UnitOfWork, publisher: Publisher, sessionmaker: SessionMaker) -> None:
    """Publish every job; a refused one runs its compensation, and Unavailable goes up
    once all were tried (the ones the broker took are not held back by one it refused)."""
    refused = 0
    for job in unit.jobs:
        try:
            await publisher.publish(job)
        except Exception as exc:
            refused += 0 if job.optional else 1
            log.error("could not enqueue %s %s: %s", job.name, job.task_id, type(exc).__name__)
            if job.on_refused is not None:
                await _compensate(job.on_refused, sessionmaker)
    if refused:
        for compensation in unit.refusal_compensations:
            await _compensate(compensation, sessionmaker)
        raise Unavailable(NOT_SCHEDULED)


@asynccontextmanager
async def unit_of_work(
    sessionmaker: SessionMaker, publisher: Publisher, *, actor: Actor | None = None
) -> AsyncIterator[UnitOfWork]:
    """Commit when the block ends normally (then publish), roll back otherwise.
    ``actor``: who acts (the API's and the console's units), named by the audit events
    the work records."""
    async with sessionmaker() as session:
        unit = UnitOfWork(session, max_countdown=publisher.max_countdown, actor=actor)
        yield unit
        await session.commit()
        if ids := written_ids(session):  # a refused job: its events say it never started
            unit.if_refused(functools.partial(mark_not_scheduled, ids=ids))
    await publish(unit, publisher, sessionmaker)
