"""/messages: post (now or at ``send_at``, to one channel or many), read, reschedule,
cancel, edit, delete, pin — of one post or of a fan-out group.

``POST /messages`` answers as the original did: 202 ``{"task_id", "post_id"}`` + Location
(or the send task's answer with ``Prefer: wait=N``); with ``channel_ids``, 202 with a list
of each and the ``group_id`` (Location: the group). Work on a sent post is a task: 202
``{"task_id", "post_id"}``, or its answer with ``Prefer: wait``. What needs no Telegram
(a reschedule, a cancel, an edit before sending) answers 200 with the post as it is now.
A group route answers ``{"group_id", "posts": [...]}``: 202 when any task was started.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query
from fastapi.responses import JSONResponse, Response

from botmgr.deps import CeleryDep, ReaderDep, SettingsDep, UnitDep
from botmgr.errors import RESPONSES
from botmgr.idempotency.api import idempotent
from botmgr.models import PostStatus
from botmgr.posts import lifecycle, queries, service
from botmgr.posts.answers import GroupAnswer, group_body
from botmgr.posts.lifecycle import Change
from botmgr.posts.schemas import (
    ActionAccepted,
    GroupAccepted,
    GroupActionOut,
    MessageIn,
    PinIn,
    PostAccepted,
    PostActionDone,
    PostOut,
    PostPage,
    PostPatchIn,
    PostSentOut,
    button_rows,
)
from botmgr.security import require_operator
from botmgr.tasks.answers import TaskAnswer

router = APIRouter(tags=["posts"], dependencies=[Depends(require_operator)], responses=RESPONSES)
TASK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": PostSentOut, "description": "the send task's answer (Prefer: wait)"},
    202: {
        "model": PostAccepted | GroupAccepted,
        "description": "accepted: each post is sent by a task (a list for channel_ids)",
    },
}
ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": PostOut | PostActionDone, "description": "done (or the task's answer)"},
    202: {"model": ActionAccepted, "description": "accepted: a task does it in Telegram"},
}
GROUP_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": GroupActionOut, "description": "done: nothing needed Telegram"},
    202: {"model": GroupActionOut, "description": "accepted: tasks do it in Telegram"},
}
PostId = Annotated[int, Path(ge=1, le=2**63 - 1)]
GroupId = Annotated[str, Path(min_length=1, max_length=36)]
Prefer = Annotated[str | None, Header()]


@router.post("/messages", status_code=202, response_class=TaskAnswer, responses=TASK_RESPONSES)
@idempotent
async def post_message(
    body: MessageIn, unit: UnitDep, celery: CeleryDep, settings: SettingsDep, prefer: Prefer = None
) -> Response:
    created = await service.submit(
        unit, channel_ids=body.channels(), draft=body.draft(), fan_out=body.channel_ids is not None
    )
    if created.group_id is None:
        post = created.posts[0]
        return TaskAnswer(
            celery,
            post.task_id,
            prefer=prefer,
            cap=settings.task_wait_cap,
            extra={"post_id": post.id},
        )
    refs = [
        {"post_id": p.id, "channel_id": c, "task_id": p.task_id, "status": p.status.value}
        for p, c in zip(created.posts, created.channel_ids, strict=True)
    ]
    accepted = GroupAccepted.model_validate(
        {
            "group_id": created.group_id,
            "post_id": [p.id for p in created.posts],
            "task_id": [p.task_id for p in created.posts],
            "posts": refs,
        }
    )
    return GroupAnswer(
        celery,
        accepted.model_dump(mode="json"),
        [p.task_id for p in created.posts],
        location=f"/messages/groups/{created.group_id}",
        prefer=prefer,
        cap=settings.task_wait_cap,
    )


@router.get("/messages")
async def list_messages(
    reader: ReaderDep,
    channel_id: Annotated[str | None, Query(max_length=32)] = None,
    status: Annotated[list[PostStatus] | None, Query()] = None,
    group: Annotated[str | None, Query(max_length=36)] = None,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
    order: Annotated[queries.Order, Query()] = "newest",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> PostPage:
    """Posts, newest first (``order=due``: by their time, earliest first — the schedule).
    ``status`` may repeat; ``from``/``to`` bound the post's time (sent, else due, else
    asked for)."""
    filters = queries.PostFilter(
        channel_id=channel_id,
        status=tuple(status or ()),
        group_id=group,
        since=since,
        until=until,
        order=order,
    )
    return await queries.table(reader, filters, limit=limit, offset=offset)


# ---------------------------------------------------------------- groups (before /{post_id})
@router.get("/messages/groups/{group_id}")
async def get_group(group_id: GroupId, unit: UnitDep) -> PostPage:
    posts = await queries.group(unit.session, group_id)
    return PostPage(messages=posts, total=len(posts), limit=len(posts), offset=0)


def _group_answer(group_id: str, changes: list[Change]) -> JSONResponse:
    body = group_body(group_id, changes)
    return JSONResponse(body, 202 if any(c.task_id for c in changes) else 200)


@router.patch("/messages/groups/{group_id}", responses=GROUP_RESPONSES)
async def change_group(group_id: GroupId, body: PostPatchIn, unit: UnitDep) -> JSONResponse:
    changes = await lifecycle.change(
        unit,
        group_id=group_id,
        send_at=body.send_at,
        markdown=body.message,
        buttons=button_rows(body.buttons),
    )
    return _group_answer(group_id, changes)


@router.delete("/messages/groups/{group_id}", responses=GROUP_RESPONSES)
async def remove_group(group_id: GroupId, unit: UnitDep) -> JSONResponse:
    return _group_answer(group_id, await lifecycle.remove(unit, group_id=group_id))


@router.post("/messages/groups/{group_id}/pin", responses=GROUP_RESPONSES)
async def pin_group(group_id: GroupId, unit: UnitDep, body: PinIn | None = None) -> JSONResponse:
    silent = body.silent if body is not None else True
    return _group_answer(group_id, await lifecycle.pin(unit, group_id=group_id, silent=silent))


@router.delete("/messages/groups/{group_id}/pin", responses=GROUP_RESPONSES)
async def unpin_group(group_id: GroupId, unit: UnitDep) -> JSONResponse:
    return _group_answer(group_id, await lifecycle.pin(unit, group_id=group_id, unpin=True))


# ---------------------------------------------------------------- one post
@router.get("/messages/{post_id}")
async def get_message(post_id: PostId, unit: UnitDep) -> PostOut:
    return await queries.get(unit.session, post_id)


def _answer(change: Change, celery: CeleryDep, settings: SettingsDep, prefer: str | None) -> Any:
    """A task on a sent post: 202 (or its answer); else the post as it is now."""
    post = change.post
    if change.task_id is not None and post.status != PostStatus.queued:
        extra = {"post_id": post.id}
        return TaskAnswer(
            celery, change.task_id, prefer=prefer, cap=settings.task_wait_cap, extra=extra
        )
    return None


async def _now(unit: UnitDep, change: Change) -> PostOut:
    await unit.session.flush()
    await unit.session.refresh(change.post)  # updated_at is set by the database
    return await queries.get(unit.session, change.post.id)


@router.patch("/messages/{post_id}", response_model=None, responses=ACTION_RESPONSES)
async def change_message(
    post_id: PostId,
    body: PostPatchIn,
    unit: UnitDep,
    celery: CeleryDep,
    settings: SettingsDep,
    prefer: Prefer = None,
) -> PostOut | Response:
    """A post not sent yet: new ``send_at`` and/or text and buttons, at once (200). A
    sent post: ``message``/``buttons`` edited in Telegram by a task (202)."""
    [change] = await lifecycle.change(
        unit,
        post_id=post_id,
        send_at=body.send_at,
        markdown=body.message,
        buttons=button_rows(body.buttons),
    )
    return _answer(change, celery, settings, prefer) or await _now(unit, change)


@router.delete("/messages/{post_id}", response_model=None, responses=ACTION_RESPONSES)
async def remove_message(
    post_id: PostId, unit: UnitDep, celery: CeleryDep, settings: SettingsDep, prefer: Prefer = None
) -> PostOut | Response:
    """Not sent yet: cancelled, it never goes out (200). Sent: deleted from the channel
    by a task (202)."""
    [change] = await lifecycle.remove(unit, post_id=post_id)
    return _answer(change, celery, settings, prefer) or await _now(unit, change)


@router.post("/messages/{post_id}/pin", status_code=202, response_class=TaskAnswer)
async def pin_message(
    post_id: PostId,
    unit: UnitDep,
    celery: CeleryDep,
    settings: SettingsDep,
    body: PinIn | None = None,
    prefer: Prefer = None,
) -> Response:
    """Pin a sent post; ``{"silent": false}`` notifies the subscribers of the pin."""
    silent = body.silent if body is not None else True
    [change] = await lifecycle.pin(unit, post_id=post_id, silent=silent)
    answer: Response = _answer(change, celery, settings, prefer)
    return answer


@router.delete("/messages/{post_id}/pin", status_code=202, response_class=TaskAnswer)
async def unpin_message(
    post_id: PostId, unit: UnitDep, celery: CeleryDep, settings: SettingsDep, prefer: Prefer = None
) -> Response:
    [change] = await lifecycle.pin(unit, post_id=post_id, unpin=True)
    answer: Response = _answer(change, celery, settings, prefer)
    return answer
