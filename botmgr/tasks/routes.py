"""GET /tasks/{id}: ``{"task_id", "task_status", "task_result"}`` for any task above.

``task_status`` is Celery's state; ``task_result`` the task's answer body (see
tasks/results.py). Celery says PENDING for ids it never saw, so an id that is neither in
the result backend nor recorded on a binding or post answers 404."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from sqlalchemy import exists, or_, select

from botmgr.deps import CeleryDep, SessionDep
from botmgr.errors import RESPONSES, NotFound
from botmgr.models import Binding, Post
from botmgr.security import require_operator
from botmgr.tasks import waiting
from botmgr.tasks.results import split

router = APIRouter(tags=["tasks"], dependencies=[Depends(require_operator)], responses=RESPONSES)


@router.get("/tasks/{task_id}")
async def get_task(
    task_id: Annotated[str, Path(max_length=64)], session: SessionDep, celery: CeleryDep
) -> dict[str, Any]:
    state, result = await waiting.read(celery, task_id)
    if state == "PENDING":
        known = await session.scalar(
            select(
                or_(
                    exists().where(Post.task_id == task_id),
                    exists().where(Binding.task_id == task_id),
                )
            )
        )
        if not known:
            raise NotFound("task not found")
        body: Any = None
    elif state in ("RETRY", "STARTED"):
        body = {"message": str(result)[:500]} if state == "RETRY" else None
    else:
        body = split(result)[1]
    return {"task_id": task_id, "task_status": state, "task_result": body}
