"""Thin Celery adapters: each task runs one service coroutine on the worker's loop in one
transaction (commit on return, rollback on exception) and returns its TaskResult."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from celery import Celery, Task
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.channels import jobs as channel_jobs
from botmgr.db import task_session
from botmgr.posts import service as posts
from botmgr.settings import Settings
from botmgr.tasks import results
from botmgr.tasks.results import RetryLater, TaskResult
from botmgr.worker.app import BIND_CHANNEL, CHECK_BINDING, SEND_POST
from botmgr.worker.loop import WorkerRuntime

log = logging.getLogger(__name__)
Job = Callable[[AsyncSession, WorkerRuntime], Awaitable[TaskResult]]


def _in_session(runtime: WorkerRuntime, job: Job) -> TaskResult:
    async def work(rt: WorkerRuntime) -> TaskResult:
        async with task_session(rt.sessionmaker) as session:
            return await job(session, rt)

    return runtime.run(work)


def _retrying(
    task: Task, runtime: WorkerRuntime, job: Job, max_retries: int, give_up: Job | None = None
) -> TaskResult:
    """Run ``job``; on RetryLater re-schedule the task after the wait (never sleep here)."""
    try:
        return _in_session(runtime, job)
    except RetryLater as exc:
        if task.request.retries >= max_retries:
            log.warning("task %s gives up: %s", task.request.id, exc.reason)
            if give_up is not None:
                return _in_session(runtime, give_up)
            return results.fail(503, f"gave up after retries: {exc.reason}")
        log.info("task %s retries in %ss: %s", task.request.id, exc.seconds, exc.reason)
        raise task.retry(countdown=exc.seconds, max_retries=max_retries, exc=exc) from None


def register(app: Celery, runtime: WorkerRuntime, settings: Settings) -> dict[str, Any]:
    @app.task(name=BIND_CHANNEL, bind=True)
    def bind_channel(self: Task, binding_id: int) -> TaskResult:
        return _retrying(
            self,
            runtime,
            lambda s, rt: channel_jobs.resolve_binding(
                s, binding_id, gateway=rt.gateway, cipher=rt.cipher
            ),
            max_retries=5,
        )

    @app.task(name=CHECK_BINDING, bind=True)
    def check_binding(self: Task, binding_id: int) -> TaskResult:
        return _retrying(
            self,
            runtime,
            lambda s, rt: channel_jobs.check_binding(
                s, binding_id, gateway=rt.gateway, cipher=rt.cipher
            ),
            max_retries=3,
        )

    @app.task(name=SEND_POST, bind=True)
    def send_post(self: Task, post_id: int) -> TaskResult:
        return _retrying(
            self,
            runtime,
            lambda s, rt: posts.send(s, post_id, gateway=rt.gateway, cipher=rt.cipher),
            max_retries=settings.post_max_retries,
            give_up=lambda s, rt: posts.give_up(s, post_id, "Telegram kept refusing"),
        )

    return {"bind_channel": bind_channel, "check_binding": check_binding, "send_post": send_post}
