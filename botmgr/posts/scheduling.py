"""Publishing the send task of a committed post — shared by the API and the console."""

from __future__ import annotations

import contextlib

from celery import Celery
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.errors import Unavailable
from botmgr.posts import service
from botmgr.tasks import waiting
from botmgr.worker.app import SEND_POST


async def schedule_send(session: AsyncSession, celery: Celery, post_id: int, task_id: str) -> None:
    """Queue the post's task. If the queue refuses, the post is failed before Unavailable
    goes up: the caller hears "not scheduled" and may post again, so this row must never
    go out as well. (If the database is down too, the row stays queued with no task.)"""
    try:
        await waiting.enqueue(celery, SEND_POST, [post_id], task_id)
    except Unavailable:
        with contextlib.suppress(Exception):
            await service.fail_queued(session, post_id, "not scheduled: task queue unavailable")
            await session.commit()
        raise
