"""POST /messages: 202 + task id (or the task's answer with ``Prefer: wait=N``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse

from botmgr.deps import CeleryDep, SessionDep, SettingsDep
from botmgr.errors import RESPONSES
from botmgr.posts import service
from botmgr.posts.scheduling import schedule_send
from botmgr.posts.schemas import MessageIn
from botmgr.security import require_operator
from botmgr.tasks import waiting

router = APIRouter(tags=["posts"], dependencies=[Depends(require_operator)], responses=RESPONSES)


@router.post("/messages")
async def post_message(
    body: MessageIn,
    session: SessionDep,
    celery: CeleryDep,
    settings: SettingsDep,
    prefer: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    task_id = str(uuid.uuid4())
    post = await service.enqueue(
        session, channel_id=body.channel_id, markdown=body.message, task_id=task_id
    )
    await session.commit()
    await schedule_send(session, celery, post.id, task_id)
    return await waiting.answer(celery, task_id, prefer, settings.task_wait_cap)
