"""/channels. ``{tg_id}`` in paths is the Telegram channel id, bare or ``-100…``; a
channel that has no id yet (bound by invite link or by a name not resolved) can also be
named ``@username`` or ``+INVITEHASH`` there.

Answers have no envelope, as in the original: ``POST`` → 202 ``{"task_id"}`` + Location
(or the bind task's own answer with ``Prefer: wait=N``), ``GET /channels/`` →
``{"channels": [...], "total", "limit", "offset"}``."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query

from botmgr.channels import service
from botmgr.channels.schemas import (
    BindIn,
    BindingCheckedOut,
    ChannelBoundOut,
    ChannelOut,
    ChannelPage,
    ChannelStatsOut,
    UnboundOut,
)
from botmgr.deps import CeleryDep, ReaderDep, SettingsDep, UnitDep
from botmgr.errors import RESPONSES
from botmgr.idempotency.api import idempotent
from botmgr.security import require_operator
from botmgr.tasks.answers import TaskAnswer
from botmgr.tasks.schemas import TaskAccepted

router = APIRouter(
    prefix="/channels",
    tags=["channels"],
    dependencies=[Depends(require_operator)],
    responses=RESPONSES,
)

TgId = Annotated[str, Path(max_length=32)]
TASK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": ChannelBoundOut, "description": "the bind task's answer (Prefer: wait)"},
    202: {"model": TaskAccepted, "description": "accepted: the bind runs as a task"},
}
CHECK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": BindingCheckedOut, "description": "the check's answer (Prefer: wait)"},
    202: {"model": TaskAccepted, "description": "accepted: the check runs as a task"},
}


@router.post("/", status_code=202, response_class=TaskAnswer, responses=TASK_RESPONSES)
@idempotent
async def bind_channel(
    body: BindIn,
    unit: UnitDep,
    celery: CeleryDep,
    settings: SettingsDep,
    prefer: Annotated[str | None, Header()] = None,
) -> TaskAnswer:
    task_id = await service.start_bind(unit, reference=body.channel, bot_id=body.bot_id)
    return TaskAnswer(celery, task_id, prefer=prefer, cap=settings.task_wait_cap)


@router.get("/")
async def list_channels(
    reader: ReaderDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> ChannelPage:
    return await service.table(reader, limit=limit, offset=offset)


@router.get("/{tg_id}")
async def get_channel(tg_id: TgId, unit: UnitDep) -> ChannelOut:
    return await service.describe(unit.session, tg_id)


@router.post(
    "/{tg_id}/check", status_code=202, response_class=TaskAnswer, responses=CHECK_RESPONSES
)
async def check_channel(
    tg_id: TgId,
    unit: UnitDep,
    celery: CeleryDep,
    settings: SettingsDep,
    prefer: Annotated[str | None, Header()] = None,
) -> TaskAnswer:
    """Ask Telegram now whether the bound bot may post (``new`` → ``active`` when it
    was granted the rights); answers the binding with its status and reason."""
    task_id = await service.request_check(unit, tg_id)
    return TaskAnswer(celery, task_id, prefer=prefer, cap=settings.task_wait_cap)


@router.get("/{tg_id}/stats")
async def channel_stats(
    tg_id: TgId,
    unit: UnitDep,
    settings: SettingsDep,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> ChannelStatsOut:
    """Daily rows (posts, views, subscribers), ``from``/``to`` inclusive, oldest first;
    with the change in subscribers, the day's posts' counters at each age (``by_age``)
    and ERR. The same table as CSV: ``GET /channels/{tg_id}/stats.csv``."""
    return await service.daily_stats(
        unit.session,
        tg_id,
        start=start,
        end=end,
        timezone=settings.timezone,
        ages=settings.post_ages,
    )


@router.delete("/{tg_id}")
async def unbind_channel(tg_id: TgId, unit: UnitDep) -> UnboundOut:
    return await service.unbind(unit.session, tg_id)
