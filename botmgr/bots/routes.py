"""/bots: the original's envelope ``{"status":"ok","data":…}`` / ``{"status":"error",…}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from botmgr.bots import service
from botmgr.bots.schemas import BotCreated, BotDeleted, BotIn, BotOut, BotPage, BotPatch, Envelope
from botmgr.deps import CipherDep, GatewayDep, ReaderDep, UnitDep
from botmgr.errors import RESPONSES
from botmgr.security import require_operator

router = APIRouter(
    prefix="/bots", tags=["bots"], dependencies=[Depends(require_operator)], responses=RESPONSES
)

BotId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post("/")
async def create_bot(
    body: BotIn, unit: UnitDep, gateway: GatewayDep, cipher: CipherDep
) -> Envelope[BotCreated]:
    bot_id, new = await service.register(unit.session, body, gateway=gateway, cipher=cipher)
    return Envelope(data=BotCreated(id=bot_id, new=new))


@router.get("/")
async def list_bots(
    reader: ReaderDep,
    cipher: CipherDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> BotPage:
    rows, total = await service.table(reader, limit=limit, offset=offset, cipher=cipher)
    return BotPage(data=rows, total=total, limit=limit, offset=offset)


@router.get("/{bot_id}")
async def get_bot(bot_id: BotId, unit: UnitDep, cipher: CipherDep) -> Envelope[BotOut]:
    return Envelope(data=await service.describe(unit.session, bot_id, cipher=cipher))


@router.patch("/{bot_id}")
async def patch_bot(
    bot_id: BotId, body: BotPatch, unit: UnitDep, gateway: GatewayDep, cipher: CipherDep
) -> Envelope[BotOut]:
    bot = await service.patch(unit.session, bot_id, body, gateway=gateway, cipher=cipher)
    return Envelope(data=bot)


@router.delete("/{bot_id}")
async def delete_bot(bot_id: BotId, unit: UnitDep) -> Envelope[BotDeleted]:
    bot = await service.delete(unit.session, bot_id)
    return Envelope(data=BotDeleted(id=bot.id, status=bot.status.value))
