"""Reading the analytics: a channel's daily table (the collected rows with the change in
subscribers, the day's posts' counters at each age, and ERR) and one post's samples.

ERR (engagement rate by reach) of a day = the mean views at 24 h of the posts published
that day ÷ the day's subscribers, in percent — the rate TGStat and Telemetr publish,
computed from what a bot can read. Posts count for the day they were published on in
BOTMGR_TIMEZONE, as the daily rows do.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import Date, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.channels.schemas import AgeTotals, DailyStatsOut
from botmgr.errors import NotFound
from botmgr.models import Channel, Post, PostSample
from botmgr.stats import service as stats
from botmgr.stats.schemas import PostStatsOut, SampleOut

ERR_AGE = 24  # hours: the age ERR is taken at


def err_of(views: int, posts: int, subscribers: int | None) -> float | None:
    """Mean views per post ÷ subscribers, in percent, two decimals."""
    if not posts or not subscribers:
        return None
    return round(100 * views / posts / subscribers, 2)


async def _by_age(
    session: AsyncSession, channel_id: int, timezone: str, start: date | None, end: date | None
) -> dict[tuple[date, int], AgeTotals]:
    day = cast(func.timezone(timezone, PostSample.published_at), Date).label("day")
    stmt = (
        select(
            day,
            PostSample.age_hours,
            func.count(),
            func.sum(PostSample.views),
            func.sum(PostSample.forwards),
            func.sum(PostSample.reactions),
        )
        .where(PostSample.channel_id == channel_id, PostSample.views.is_not(None))
        .group_by(day, PostSample.age_hours)
    )
    if start is not None:
        stmt = stmt.where(day >= start)
    if end is not None:
        stmt = stmt.where(day <= end)
    return {
        (d, hours): AgeTotals(
            hours=hours, posts=n, views=views or 0, forwards=fwd or 0, reactions=reactions or 0
        )
        for d, hours, n, views, fwd, reactions in await session.execute(stmt)
    }


async def daily_table(
    session: AsyncSession,
    channel_id: int,
    *,
    start: date | None,
    end: date | None,
    timezone: str,
    ages: Sequence[int],
) -> list[DailyStatsOut]:
    """The channel's daily rows from ``start`` to ``end`` (inclusive), oldest first."""
    before = start - timedelta(days=1) if start is not None else None
    rows = await stats.daily(session, channel_id, start=before, end=end)
    totals = await _by_age(session, channel_id, timezone, start, end)
    previous = {r.day: r.subscribers for r in rows}
    out = []
    for row in rows:
        if start is not None and row.day < start:
            continue  # read only for the first day's change
        prior = previous.get(row.day - timedelta(days=1))
        by_age = [
            totals.get((row.day, h), AgeTotals(hours=h, posts=0, views=0, forwards=0, reactions=0))
            for h in ages
        ]
        at_err = totals.get((row.day, ERR_AGE))
        daily = DailyStatsOut.model_validate(row, from_attributes=True)
        daily.subscribers_change = (
            row.subscribers - prior if row.subscribers is not None and prior is not None else None
        )
        daily.by_age = by_age
        daily.err = err_of(at_err.views, at_err.posts, row.subscribers) if at_err else None
        out.append(daily)
    return out


CSV_FIELDS = ("day", "posts", "views", "subscribers", "subscribers_change", "err")
CSV_TAIL = ("complete", "since", "collected_at")


def to_csv(rows: Sequence[DailyStatsOut], ages: Sequence[int]) -> str:
    """The daily table as CSV: one line per row, the JSON's fields flattened (each age's
    totals as ``posts_24h``, ``views_24h`` …), empty cells for nulls."""
    per_age = [f"{name}_{h}h" for h in ages for name in ("posts", "views", "forwards", "reactions")]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CSV_FIELDS, *per_age, *CSV_TAIL])
    for row in rows:
        data = row.model_dump(mode="json")
        ages_of = {a.hours: a for a in row.by_age}
        cells = [data[f] for f in CSV_FIELDS]
        for h in ages:
            a = ages_of.get(h)
            cells += [a.posts, a.views, a.forwards, a.reactions] if a else ["", "", "", ""]
        cells += [data[f] for f in CSV_TAIL]
        writer.writerow(["" if c is None else c for c in cells])
    return out.getvalue()


async def post_stats(session: AsyncSession, post_id: int) -> PostStatsOut:
    """The post's samples, youngest age first (pending ones too)."""
    post = await session.get(Post, post_id)
    if post is None:
        raise NotFound("post not found")
    channel = await session.get_one(Channel, post.channel_id)
    found = await session.execute(
        select(PostSample)
        .where(PostSample.post_id == post_id)
        .order_by(PostSample.age_hours, PostSample.message_id)
    )
    return PostStatsOut(
        post_id=post.id,
        channel_id=channel.tg_id,
        message_id=post.message_id,
        published_at=post.sent_at,
        samples=[SampleOut.model_validate(s, from_attributes=True) for s in found.scalars()],
    )
