"""/channels. ``{tg_id}`` in paths is the Telegram channel id, bare or ``-100…``; a
channel that has no id yet (bound by invite link or by a name not resolved) can also be
named ``@username`` or ``+INVITEHASH`` there.

Answers have no envelope, as in the original: ``POST`` → 202 ``{"task_id"}`` + Location
(or the bind task's own answer with ``Prefer: wait=N``), ``GET /channels/`` →
``{"channels": [...], "total", "limit", "offset"}``."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query
from fastapi.responses import JSONResponse

from botmgr.channels import service
from botmgr.channels.schemas import BindIn, StatsOut
from botmgr.deps import CeleryDep, SessionDep, SettingsDep
from botmgr.errors import RESPONSES, Invalid
from botmgr.security import require_operator
from botmgr.stats import service as stats
from botmgr.tasks import waiting
from botmgr.worker.app import BIND_CHANNEL

router = APIRouter(
    prefix="/channels",
    tags=["channels"],
    dependencies=[Depends(require_operator)],
    responses=RESPONSES,
)

TgId = Annotated[str, Path(max_length=32)]


@router.post("/")
async def bind_channel(
    body: BindIn,
    session: SessionDep,
    celery: CeleryDep,
    settings: SettingsDep,
    prefer: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    task_id = str(uuid.uuid4())
    binding = await service.start_bind(
        session, reference=body.channel, bot_id=body.bot_id, task_id=task_id
    )
    await session.commit()
    await waiting.enqueue(celery, BIND_CHANNEL, [binding.id], task_id)
    return await waiting.answer(celery, task_id, prefer, settings.task_wait_cap)


@router.get("/")
async def list_channels(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> dict[str, Any]:
    rows, total = await service.table(session, limit=limit, offset=offset)
    return {
        "channels": [r.model_dump(mode="json") for r in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.get("/{tg_id}")
async def get_channel(tg_id: TgId, session: SessionDep) -> dict[str, Any]:
    return (await service.describe(session, tg_id)).model_dump(mode="json")


@router.get("/{tg_id}/stats")
async def channel_stats(
    tg_id: TgId,
    session: SessionDep,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    """Daily rows (posts, views, subscribers), ``from``/``to`` inclusive, oldest first."""
    if start is not None and end is not None and start > end:
        raise Invalid("'from' is after 'to'")
    channel = await service.describe(session, tg_id)  # 404 for an unknown channel
    rows = await stats.daily(session, channel.id, start=start, end=end)
    return {
        "channel_id": channel.tg_id,
        "stats": [
            StatsOut.model_validate(r, from_attributes=True).model_dump(mode="json") for r in rows
        ],
    }


@router.delete("/{tg_id}")
async def unbind_channel(tg_id: TgId, session: SessionDep) -> dict[str, Any]:
    channel = await service.unbind(session, tg_id)
    await session.commit()
    return {"message": "Канал отвязан", **channel.model_dump(mode="json")}
