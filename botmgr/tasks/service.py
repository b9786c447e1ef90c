"""A task as ``GET /tasks/{id}`` shows it. Celery says PENDING for ids it never saw, so
an id that is neither in the result backend nor recorded on a binding, a post or a post's action is
unknown (404)."""

from __future__ import annotations

from typing import Any

from celery import Celery
from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.errors import NotFound
from botmgr.models import Binding, Post, PostAction
from botmgr.tasks.answers import read
from botmgr.tasks.results import split
from botmgr.tasks.schemas import TaskOut


async def describe(session: AsyncSession, celery: Celery, task_id: str) -> TaskOut:
    state, result = await read(celery, task_id)
    body: Any = None
    if state == "PENDING":
        known = await session.scalar(
            select(
                or_(
                    exists().where(Post.task_id == task_id),
                    exists().where(Binding.task_id == task_id),
                    exists().where(PostAction.task_id == task_id),
                )
            )
        )
        if not known:
            raise NotFound("task not found")
    elif state == "RETRY":
        body = {"message": str(result)[:500]}
    elif state != "STARTED":
        body = split(result)[1]
    return TaskOut(task_id=task_id, task_status=state, task_result=body)
