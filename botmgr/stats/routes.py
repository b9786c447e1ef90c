"""Analytics routes beside the seed's ``GET /channels/{tg_id}/stats`` (channels/routes.py):
one post's samples, and the daily table as CSV (the JSON's rows, flattened)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from botmgr.channels import service as channels
from botmgr.channels.routes import TgId
from botmgr.deps import SettingsDep, UnitDep
from botmgr.errors import RESPONSES
from botmgr.security import require_operator
from botmgr.stats import analytics
from botmgr.stats.schemas import PostStatsOut

router = APIRouter(tags=["stats"], dependencies=[Depends(require_operator)], responses=RESPONSES)
PostId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("/messages/{post_id}/stats")
async def post_stats(post_id: PostId, unit: UnitDep) -> PostStatsOut:
    """The post's views, forwards and reactions at each age (BOTMGR_STATS_POST_AGES
    hours after it was sent); a sample not due yet has ``taken_at: null``."""
    return await analytics.post_stats(unit.session, post_id)


@router.get(
    "/channels/{tg_id}/stats.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "the daily table"}},
)
async def channel_stats_csv(
    tg_id: TgId,
    unit: UnitDep,
    settings: SettingsDep,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    """``GET /channels/{tg_id}/stats`` as CSV: a header line, then one line per day."""
    table = await channels.daily_stats(
        unit.session,
        tg_id,
        start=start,
        end=end,
        timezone=settings.timezone,
        ages=settings.post_ages,
    )
    name = f"channel-{table.channel_id or tg_id.strip('@+')}-stats.csv"
    return Response(
        analytics.to_csv(table.stats, settings.post_ages),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
