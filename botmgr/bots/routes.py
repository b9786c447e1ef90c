"""/bots: the original's envelope ``{"status":"ok","data":…}`` / ``{"status":"error",…}``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from botmgr.bots import service
from botmgr.bots.schemas import BotIn, BotPatch
from botmgr.deps import CipherDep, GatewayDep, SessionDep
from botmgr.errors import RESPONSES
from botmgr.security import require_operator

router = APIRouter(
    prefix="/bots", tags=["bots"], dependencies=[Depends(require_operator)], responses=RESPONSES
)

BotId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post("/")
async def create_bot(
    body: BotIn, session: SessionDep, gateway: GatewayDep, cipher: CipherDep
) -> dict[str, Any]:
    bot_id, new = await service.register(session, body, gateway=gateway, cipher=cipher)
    await session.commit()
    return {"status": "ok", "data": {"id": bot_id, "new": new}}


@router.get("/")
async def list_bots(
    session: SessionDep,
    cipher: CipherDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> dict[str, Any]:
    rows, total = await service.table(session, limit=limit, offset=offset, cipher=cipher)
    return {
        "status": "ok",
        "data": [r.model_dump(mode="json") for r in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.get("/{bot_id}")
async def get_bot(bot_id: BotId, session: SessionDep, cipher: CipherDep) -> dict:
    bot = await service.describe(session, bot_id, cipher=cipher)
    return {"status": "ok", "data": bot.model_dump(mode="json")}


@router.patch("/{bot_id}")
async def patch_bot(
    bot_id: BotId,
    body: BotPatch,
    session: SessionDep,
    gateway: GatewayDep,
    cipher: CipherDep,
) -> dict[str, Any]:
    await service.update_bot(session, bot_id, body, gateway=gateway, cipher=cipher)
    await session.commit()
    bot = await service.describe(session, bot_id, cipher=cipher)
    return {"status": "ok", "data": bot.model_dump(mode="json")}


@router.delete("/{bot_id}")
async def delete_bot(bot_id: BotId, session: SessionDep) -> dict[str, Any]:
    bot = await service.delete(session, bot_id)
    await session.commit()
    return {"status": "ok", "data": {"id": bot.id, "status": bot.status.value}}
