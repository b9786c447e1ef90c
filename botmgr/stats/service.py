"""Channel statistics as stored (the collection job belongs to the periodic work)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.models import ChannelStats


async def latest(session: AsyncSession, channel_id: int) -> ChannelStats | None:
    return (
        await session.execute(
            select(ChannelStats)
            .where(ChannelStats.channel_id == channel_id)
            .order_by(ChannelStats.day.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
