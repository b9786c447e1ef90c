"""Channel statistics as stored (the collection job belongs to the periodic work)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.audit.service import record
from botmgr.models import ChannelStats
from botmgr.tasks.names import COLLECT_CHANNEL_STATS
from botmgr.uow import UnitOfWork


async def latest(session: AsyncSession, channel_id: int) -> ChannelStats | None:
    return (
        await session.execute(
            select(ChannelStats)
            .where(ChannelStats.channel_id == channel_id)
            .order_by(ChannelStats.day.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def daily(
    session: AsyncSession, channel_id: int, *, start: date | None, end: date | None
) -> list[ChannelStats]:
    """The channel's daily rows from ``start`` to ``end`` (both included), oldest first."""
    stmt = select(ChannelStats).where(ChannelStats.channel_id == channel_id)
    if start is not None:
        stmt = stmt.where(ChannelStats.day >= start)
    if end is not None:
        stmt = stmt.where(ChannelStats.day <= end)
    return list((await session.execute(stmt.order_by(ChannelStats.day))).scalars())


def request_collection(unit: UnitOfWork, channel_id: int) -> str:
    """Ask the worker to collect the channel's statistics (yesterday's) now."""
    task_id = unit.enqueue(COLLECT_CHANNEL_STATS, channel_id)
    details = {"task_id": task_id}
    record(
        unit.session, "stats.collect", object_type="channel", object_id=channel_id, details=details
    )
    return task_id
