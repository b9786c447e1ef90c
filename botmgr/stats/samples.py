"""Post analytics: each channel post's views, forwards and reactions at fixed ages.

A post gets one pending ``post_samples`` row per age (BOTMGR_STATS_POST_AGES, hours after
publication): the service's posts when they are sent (``after_send``), other admins'
posts when the daily collection sees them in the update stream (``plan_seen``; only the
ages still ahead then — the stream is read once a day, so their 1 h mark has passed).

Due-time dispatch, as posts have it (posts/dispatch.py): nothing waits in the broker.
The reconciler (every minute) calls ``dispatch_due``: every channel with a sample due
gets one SAMPLE_POSTS task, routed to the owner of the channel's bot, and its due rows
are marked dispatched; a row whose task never ran is dispatched again after the grace.
The task (``take``) reads all of the channel's due samples at once — channels.getMessages
with ≤ 100 ids a call, each call paced — so posts of one channel due in the same minute
share calls. A sample is read at most about a reconciler period late; one read later
than ``late_limit`` (a channel without a working bot for a while) records why it has no
counters rather than passing a day-old count off as the 1 h one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.bots import service as bots
from botmgr.channels.links import channel_ref
from botmgr.models import Binding, BindingStatus, Bot, BotStatus, Channel, Post, PostSample
from botmgr.outcomes import Outcome, RetryAfterCommit, Status
from botmgr.posts.service import PostSent
from botmgr.security import Cipher, bot_account
from botmgr.tasks.names import SAMPLE_POSTS
from botmgr.telegram.gateway import (
    MESSAGES_PER_CALL,
    ChannelUnresolvable,
    FloodWait,
    Gateway,
    NotAdmin,
    TelegramUnavailable,
    TokenInvalid,
)
from botmgr.uow import UnitOfWork

#: Samples read by one task at most (≤ 50 calls); the rest stay due for the next run.
TAKE_MAX = 5000
#: Channels dispatched per reconciler run at most (one short transaction).
DISPATCH_MAX = 1000
GONE = "the post is gone (deleted)"


def late_limit(age_hours: int) -> timedelta:
    """How late a sample may still be read as its age's: a quarter of the age, at
    least ten minutes (a 1 h sample read at 1 h 15 min still is; a 24 h one at 30 h)."""
    return max(timedelta(minutes=10), timedelta(hours=age_hours) / 4)


def _rows(
    channel_id: int,
    message_id: int,
    published_at: datetime,
    ages: Iterable[int],
    now: datetime,
    post_id: int | None = None,
) -> list[dict[str, Any]]:
    rows = []
    for hours in ages:
        due = published_at + timedelta(hours=hours)
        if due + late_limit(hours) > now:  # an age already past is not guessed at
            rows.append(
                {
                    "channel_id": channel_id,
                    "message_id": message_id,
                    "post_id": post_id,
                    "published_at": published_at,
                    "age_hours": hours,
                    "due_at": due,
                }
            )
    return rows


async def _insert(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 5000):  # PostgreSQL: ≤ 32,767 parameters a statement
        await session.execute(
            insert(PostSample)
            .values(rows[start : start + 5000])
            .on_conflict_do_nothing(index_elements=["channel_id", "message_id", "age_hours"])
        )


async def after_send(session: AsyncSession, sent: Outcome, *, ages: Sequence[int]) -> None:
    """A post this call just sent (``PostSent.fresh``) gets its pending samples, in the
    send's transaction. An album is sampled by its first message (its items are one
    post to a reader; each shows the same views)."""
    if not (isinstance(sent, PostSent) and sent.fresh and sent.message_id is not None):
        return
    post = await session.get_one(Post, sent.post_id)
    if post.sent_at is None:
        return
    rows = _rows(post.channel_id, sent.message_id, post.sent_at, ages, datetime.now(UTC), post.id)
    await _insert(session, rows)


async def plan_seen(
    session: AsyncSession, seen: Iterable[tuple[int, int, datetime]], *, ages: Sequence[int]
) -> None:
    """Posts seen in update streams, as (channel id, message id, date): the samples of
    the ages still ahead (a post the service sent has its rows already: kept as they are)."""
    now = datetime.now(UTC)
    rows = [r for c, m, d in seen for r in _rows(c, m, d, ages, now)]
    if rows:
        await _insert(session, rows)


@dataclass(frozen=True, slots=True)
class Dispatched:
    channels: int  # SAMPLE_POSTS tasks published
    unreadable: int  # due samples of channels with no active binding, closed with a reason


async def dispatch_due(unit: UnitOfWork, *, grace: float) -> Dispatched:
    """One SAMPLE_POSTS task per channel with a sample due now (and not out already, or
    out for longer than ``grace`` seconds), routed to its bot's owner."""
    session, now = unit.session, datetime.now(UTC)
    open_due = and_(
        PostSample.taken_at.is_(None),
        PostSample.due_at <= now,
        or_(
            PostSample.dispatched_at.is_(None),
            PostSample.dispatched_at < now - timedelta(seconds=grace),
        ),
    )
    channel_ids = list(
        (
            await session.execute(
                select(PostSample.channel_id).where(open_due).distinct().limit(DISPATCH_MAX)
            )
        ).scalars()
    )
    if not channel_ids:
        return Dispatched(0, 0)
    bots_of = dict(
        (
            await session.execute(
                select(Binding.channel_id, Binding.bot_id)
                .join(Bot, Bot.id == Binding.bot_id)
                .where(
                    Binding.channel_id.in_(channel_ids),
                    Binding.status == BindingStatus.active,
                    Bot.status == BotStatus.active,
                )
            )
        ).all()
    )
    orphans = [c for c in channel_ids if c not in bots_of]
    unreadable = 0
    if orphans:  # nobody can read them: the age passes, say why
        closed = await session.execute(
            update(PostSample)
            .where(open_due, PostSample.channel_id.in_(orphans))
            .values(taken_at=now, error="no active binding when the sample was due")
        )
        unreadable = closed.rowcount or 0  # type: ignore[attr-defined]
    readable = sorted(bots_of)
    if readable:
        await session.execute(
            update(PostSample)
            .where(open_due, PostSample.channel_id.in_(readable))
            .values(dispatched_at=now)
        )
    for channel_id in readable:
        unit.enqueue(SAMPLE_POSTS, channel_id, bot=bots_of[channel_id])
    return Dispatched(len(readable), unreadable)


@dataclass(frozen=True, slots=True)
class Taken:
    channel_id: int
    read: int = 0  # samples with counters
    missed: int = 0  # samples closed without (gone, too late, channel lost)
    calls: int = 0  # channels.getMessages calls made
    status = Status.ok

    def body(self) -> dict[str, Any]:
        return {
            "channel_id": self.channel_id,
            "read": self.read,
            "missed": self.missed,
            "calls": self.calls,
        }


async def take(
    session: AsyncSession, channel_id: int, *, gateway: Gateway, cipher: Cipher
) -> Taken | RetryAfterCommit:
    """Read the channel's due samples through its active binding's bot. A flood wait or
    an unreachable Telegram keeps them due (marked dispatched until the retry, so the
    reconciler does not send a second task meanwhile) and the task retries."""
    now = datetime.now(UTC)
    due = list(
        (
            await session.execute(
                select(PostSample)
                .where(
                    PostSample.channel_id == channel_id,
                    PostSample.taken_at.is_(None),
                    PostSample.due_at <= now,
                )
                .order_by(PostSample.due_at)
                .limit(TAKE_MAX)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )
    if not due:
        return Taken(channel_id)
    found = (
        await session.execute(
            select(Bot, Channel)
            .join(Binding, Binding.bot_id == Bot.id)
            .join(Channel, Channel.id == Binding.channel_id)
            .where(
                Binding.channel_id == channel_id,
                Binding.status == BindingStatus.active,
                Bot.status == BotStatus.active,
            )
        )
    ).first()
    if found is None:
        return _close(due, now, "no active binding when the sample was due", channel_id)
    bot, channel = found
    late = [s for s in due if now - s.due_at > late_limit(s.age_hours)]
    timely = [s for s in due if s not in late]
    for s in late:
        s.taken_at, s.error = now, f"not read in time (due {s.due_at:%Y-%m-%d %H:%M} UTC)"
    ids = sorted({s.message_id for s in timely})
    try:
        counts = await gateway.message_counts(bot_account(bot, cipher), channel_ref(channel), ids)
    except (FloodWait, TelegramUnavailable) as exc:
        wait = exc.seconds if isinstance(exc, FloodWait) else 0
        for s in timely:  # still out: the retry reads them
            s.dispatched_at = now + timedelta(seconds=wait)
        return RetryAfterCommit(exc)
    except TokenInvalid as exc:
        await bots.token_rejected(session, bot.id, exc.reason)
        return _close(timely, now, f"bot token rejected: {exc.reason}", channel_id, len(late))
    except (ChannelUnresolvable, NotAdmin) as exc:
        return _close(timely, now, f"cannot read the channel: {exc.reason}", channel_id, len(late))
    read = 0
    for s in timely:
        got = counts.get(s.message_id)
        s.taken_at = now
        if got is None:
            s.error = GONE
            continue
        s.views, s.forwards, s.reactions, s.error = got.views, got.forwards, got.reactions, None
        read += 1
    calls = -(-len(ids) // MESSAGES_PER_CALL)
    return Taken(channel_id, read=read, missed=len(due) - read, calls=calls)


def _close(
    samples: list[PostSample], now: datetime, why: str, channel_id: int, late: int = 0
) -> Taken:
    for s in samples:
        s.taken_at, s.error = now, why
    return Taken(channel_id, missed=len(samples) + late)
