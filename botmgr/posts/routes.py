"""POST /messages: 202 + task id (or the task's answer with ``Prefer: wait=N``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header

from botmgr.deps import CeleryDep, SettingsDep, UnitDep
from botmgr.errors import RESPONSES
from botmgr.idempotency.api import idempotent
from botmgr.posts import service
from botmgr.posts.schemas import MessageIn, PostSentOut
from botmgr.security import require_operator
from botmgr.tasks.answers import TaskAnswer
from botmgr.tasks.schemas import TaskAccepted

router = APIRouter(tags=["posts"], dependencies=[Depends(require_operator)], responses=RESPONSES)
TASK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": PostSentOut, "description": "the send task's answer (Prefer: wait)"},
    202: {"model": TaskAccepted, "description": "accepted: the post is sent by a task"},
}


@router.post("/messages", status_code=202, response_class=TaskAnswer, responses=TASK_RESPONSES)
@idempotent
async def post_message(
    body: MessageIn,
    unit: UnitDep,
    celery: CeleryDep,
    settings: SettingsDep,
    prefer: Annotated[str | None, Header()] = None,
) -> TaskAnswer:
    post = await service.create(unit, channel_id=body.channel_id, markdown=body.message)
    return TaskAnswer(celery, post.task_id, prefer=prefer, cap=settings.task_wait_cap)
