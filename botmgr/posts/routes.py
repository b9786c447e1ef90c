"""POST /messages: 202 + task id (or the task's answer with ``Prefer: wait=N``)."""

from __future__ import annotations

import contextlib
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse

from botmgr.deps import CeleryDep, SessionDep, SettingsDep
from botmgr.errors import RESPONSES, Unavailable
from botmgr.posts import service
from botmgr.posts.schemas import MessageIn
from botmgr.security import require_operator
from botmgr.tasks import waiting
from botmgr.worker.app import SEND_POST

router = APIRouter(tags=["posts"], dependencies=[Depends(require_operator)],
                   responses=RESPONSES)


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
    try:
        await waiting.enqueue(celery, SEND_POST, [post.id], task_id)
    except Unavailable:
        # The caller hears "not scheduled" and may post again: this row must then never
        # go out as well. If the database is down too, the row stays queued with no task.
        with contextlib.suppress(Exception):
            await service.fail_queued(session, post.id, "not scheduled: task queue unavailable")
            await session.commit()
        raise
    return await waiting.answer(celery, task_id, prefer, settings.task_wait_cap)
