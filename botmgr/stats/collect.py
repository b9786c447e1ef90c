"""Daily channel statistics (SPEC §5), read only with methods bots may use.

Bots cannot read history, so each channel's update stream is followed from the stored
``channels.feed_pts``: every post seen there (ours and other admins') is kept in
``channel_posts`` with its date, and a day's numbers are the posts dated within that
calendar day in BOTMGR_TIMEZONE and the sum of their current views (channels.getMessages
by id, 100 per call), plus the subscriber count at collection time. One row per channel
and day, upserted: collecting a day again replaces its row.

The stream can have a gap: past Telegram's difference limit (100000 for bots) it answers
channelDifferenceTooLong with only the latest messages; the gateway then reads the ids
after the newest post known here by channels.getMessages. A gap it cannot read back (too
wide, or a PERSISTENT_TIMESTAMP_INVALID that restarted following from getFullChannel's
pts) sets ``channels.feed_gap``, and the next row written for the channel says
``complete = false`` — a lower bound, never a silent undercount. Edits and pins move the
stream but are not posts; a deleted post is dropped from ``channel_posts`` and no longer
counts for its day.

Statistics count from the moment a binding becomes active: every path to ``active``
(bind with rights, a check, the sweep, a send) records ``channels.active_since`` through
channels/activation.py, without a Telegram call. The channel's first collection then
reads its stream from the start (getChannelDifference from pts 1; past the difference
limit, TooLong's top message and the ids below it read back by channels.getMessages down
to the first older post, ≤ GAP_READ_MAX ids, else incomplete) and keeps the posts dated
``active_since`` or later. The day of the activation says so: its row has ``since`` (the
activation) and ``complete = false`` — counted from then on, never a silent undercount. A
day that ended before the activation gets no row unless a post of it was seen (or a gap
is to be reported): a row of zeros for a day it saw nothing of would be a lie.

A channel with neither a stored position nor an activation on record (activated by none
of those paths) is only started following at its first collection, with no row for that
day; its first row is the next day's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from botmgr.bots import service as bots
from botmgr.channels.links import channel_ref
from botmgr.db import SessionGate, is_busy
from botmgr.models import (
    Binding,
    BindingStatus,
    Bot,
    BotStatus,
    Channel,
    ChannelPostSeen,
    ChannelStats,
)
from botmgr.outcomes import Status
from botmgr.security import Cipher, bot_account
from botmgr.shares import SKIPPED, BotShare, run_shares
from botmgr.stats import samples
from botmgr.tasks.names import COLLECT_CHANNEL_STATS, COLLECT_STATS, RetryPolicy
from botmgr.telegram.gateway import ChannelFeed, Gateway
from botmgr.uow import UnitOfWork
from botmgr.webhooks import events
from botmgr.webhooks.events import Event


def previous_day(timezone: str, now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(timezone)).date() - timedelta(days=1)


def day_window(day: date, timezone: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(timezone)
    start = datetime.combine(day, time(0), zone)
    return start, datetime.combine(day + timedelta(days=1), time(0), zone)


@dataclass(slots=True)
class StatsReport:
    day: date
    collected: int = 0
    started_following: int = 0
    incomplete: int = 0  # rows written with complete = false
    bots_invalidated: int = 0
    failed: dict[int, str] = field(default_factory=dict)  # channel id → reason
    postponed: list[tuple[int, int]] = field(default_factory=list)  # (channel id, seconds)
    moved: list[tuple[str, int]] = field(default_factory=list)  # (owner's queue, channel id)
    status = Status.ok

    def body(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "collected": self.collected,
            "started_following": self.started_following,
            "incomplete": self.incomplete,
            "failed": {str(k): v for k, v in self.failed.items()},
            "postponed": len(self.postponed),
            "moved": len(self.moved),
        }


async def _followed(
    sessions: SessionGate, channel_ids: list[int] | None
) -> dict[int, tuple[Bot, list[Channel]]]:
    """Channels with an active binding (and a usable bot), by bot."""
    async with sessions.session() as session:
        stmt = (
            select(Bot, Channel)
            .join(Binding, Binding.bot_id == Bot.id)
            .join(Channel, Channel.id == Binding.channel_id)
            .where(
                Binding.status == BindingStatus.active,
                Bot.status == BotStatus.active,
                Channel.tg_id.is_not(None),
            )
            .order_by(Channel.id)
        )
        if channel_ids is not None:
            stmt = stmt.where(Channel.id.in_(channel_ids))
        per_bot: dict[int, tuple[Bot, list[Channel]]] = {}
        for bot, channel in await session.execute(stmt):
            per_bot.setdefault(bot.id, (bot, []))[1].append(channel)
        return per_bot


def _counts(channel: Channel) -> bool:
    """Whether this read counts posts: a stored position, or an activation on record
    (a first read from ``active_since``); else the read only starts following."""
    return channel.feed_pts is not None or channel.active_since is not None


def _gap(channel: Channel, feed: ChannelFeed) -> bool:
    """Whether the channel's next row must say incomplete: a gap on record, or one in
    this read (a first read that only starts following has no gap)."""
    return channel.feed_gap or (_counts(channel) and not feed.complete)


def _since(channel: Channel, window: tuple[datetime, datetime]) -> datetime | None:
    """From when the service saw the day: None for the whole day, or the activation
    within it. A day that ended before the activation has no "since": it has a row only
    for posts the stream still showed dated within it (see ``_seen_nothing``)."""
    since = channel.active_since
    if since is None or since <= window[0] or since >= window[1]:
        return None
    return since


def _seen_nothing(
    channel: Channel, window: tuple[datetime, datetime], ids: list[int], gap: bool
) -> bool:
    """A day that ended before the binding became active, with no post of it seen and
    no gap to report: no row (a row of zeros would be a lie)."""
    since = channel.active_since
    return since is not None and since >= window[1] and not ids and not gap


_ROWS_PER_INSERT = 5000  # PostgreSQL takes at most 32,767 bind parameters per statement


class _Collector:
    """One bot's channels in three steps: read every update stream (paced calls), store
    what was seen in one transaction, read views and subscribers (paced calls), write
    the rows in one transaction. Few transactions, and no connection held during calls.
    A database that does not answer in time postpones the bot's channels, not the job."""

    def __init__(
        self,
        sessions: SessionGate,
        gateway: Gateway,
        policy: RetryPolicy,
        timezone: str,
        day: date,
        report: StatsReport,
        post_ages: Sequence[int] = (),
    ) -> None:
        self.sessions, self.gateway, self.policy = sessions, gateway, policy
        self.post_ages = post_ages
        self.report = report
        self.day, self.window = day, day_window(day, timezone)

    async def bot_share(self, bot: Bot, channels: list[Channel], cipher: Cipher) -> None:
        share = BotShare(self.policy)
        try:
            await self._collect(bot, channels, cipher, share)
        except Exception as exc:
            if not is_busy(exc):
                raise
            # Nothing of the share counted: collecting its channels again is the same.
            share.postpone_all(c.id for c in channels if c.id not in share.failed)
            self.report.postponed += sorted(share.postponed.items())

    async def _collect(
        self, bot: Bot, channels: list[Channel], cipher: Cipher, share: BotShare
    ) -> None:
        account = bot_account(bot, cipher)
        feeds: dict[int, ChannelFeed] = {}
        newest = await self._newest_known([c.id for c in channels])

        async def read(c: Channel) -> None:
            ref, pts, after = channel_ref(c), c.feed_pts, newest.get(c.id)
            since = c.active_since if pts is None else None  # first read: from activation
            answer = await share.call(
                c.id,
                lambda: self.gateway.channel_feed(
                    account, ref, pts=pts, after_id=after, since=since
                ),
            )
            if answer is not SKIPPED:
                feeds[c.id] = answer

        await share.each(channels, read)
        fed = [(c, feeds[c.id]) for c in channels if c.id in feeds]
        ids = await self._store_feeds(fed)
        counted = [c for c, _ in fed if _counts(c)]
        started = len(fed) - len(counted)
        gaps = {c.id for c, f in fed if _gap(c, f)}
        # no row for a day seen nothing of (the binding became active after it)
        counted = [
            c for c in counted if not _seen_nothing(c, self.window, ids.get(c.id, []), c.id in gaps)
        ]
        rows: list[dict[str, object]] = []

        async def count(c: Channel) -> None:
            ref, day_ids = channel_ref(c), ids.get(c.id, [])
            views = await share.call(c.id, lambda: self.gateway.get_views(account, ref, day_ids))
            if views is SKIPPED:
                return
            subscribers = await share.call(c.id, lambda: self.gateway.subscribers(account, ref))
            if subscribers is SKIPPED:
                return
            row = {"channel_id": c.id, "day": self.day, "posts": len(day_ids)}
            row |= {"views": sum(views.values()), "subscribers": subscribers}
            since = _since(c, self.window)  # seen from then on only: never complete
            row |= {"since": since, "complete": c.id not in gaps and since is None}
            rows.append(row)

        await share.each(counted, count)
        await self._store_rows(rows)
        if share.token_error is not None:
            async with self.sessions.session() as session:
                await bots.token_rejected(session, bot.id, share.token_error)
            self.report.bots_invalidated += 1
        self.report.started_following += started
        self.report.collected += len(rows)
        self.report.incomplete += sum(1 for r in rows if not r["complete"])
        self.report.failed.update(share.failed)  # the rights sweep deals with lost channels
        self.report.postponed += sorted(share.postponed.items())
        if share.moved_to is not None:  # another worker owns the bot: its channels go there
            self.report.moved += [(share.moved_to, c) for c in sorted(set(share.moved))]

    async def _newest_known(self, channel_ids: list[int]) -> dict[int, int]:
        """The newest post id kept per channel: where a TooLong gap starts."""
        async with self.sessions.session() as session:
            found = await session.execute(
                select(ChannelPostSeen.channel_id, func.max(ChannelPostSeen.message_id))
                .where(ChannelPostSeen.channel_id.in_(channel_ids))
                .group_by(ChannelPostSeen.channel_id)
            )
            return {channel_id: int(top) for channel_id, top in found}

    async def _store_feeds(self, fed: list[tuple[Channel, ChannelFeed]]) -> dict[int, list[int]]:
        """Keep the posts seen, forget the deleted ones, store the new stream positions
        (and gaps); the day's post ids per channel."""
        if not fed:
            return {}
        seen = [
            {"channel_id": c.id, "message_id": p.id, "date": p.date}
            for c, f in fed
            for p in f.posts
        ]
        async with self.sessions.session() as session:
            for start in range(0, len(seen), _ROWS_PER_INSERT):
                await session.execute(
                    insert(ChannelPostSeen)
                    .values(seen[start : start + _ROWS_PER_INSERT])
                    .on_conflict_do_nothing(index_elements=["channel_id", "message_id"])
                )
            # the ages still ahead of the posts seen (stats/samples.py)
            await samples.plan_seen(
                session,
                [(c.id, p.id, p.date) for c, f in fed for p in f.posts],
                ages=self.post_ages,
            )
            for c, f in fed:
                if f.deleted:  # a deleted post is no post of its day any more
                    await session.execute(
                        delete(ChannelPostSeen).where(
                            ChannelPostSeen.channel_id == c.id,
                            ChannelPostSeen.message_id.in_(f.deleted),
                        )
                    )
            await session.execute(
                update(Channel),
                [{"id": c.id, "feed_pts": f.pts, "feed_gap": _gap(c, f)} for c, f in fed],
            )
            found = await session.execute(
                select(ChannelPostSeen.channel_id, ChannelPostSeen.message_id).where(
                    ChannelPostSeen.channel_id.in_([c.id for c, _ in fed]),
                    ChannelPostSeen.date >= self.window[0],
                    ChannelPostSeen.date < self.window[1],
                )
            )
        ids: dict[int, list[int]] = {}
        for channel_id, message_id in found:
            ids.setdefault(channel_id, []).append(message_id)
        return ids

    async def _store_rows(self, rows: list[dict[str, object]]) -> None:
        if not rows:
            return
        stmt = insert(ChannelStats).values(rows)
        async with self.sessions.session() as session:
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["channel_id", "day"],
                    set_={
                        "posts": stmt.excluded.posts,
                        "views": stmt.excluded.views,
                        "subscribers": stmt.excluded.subscribers,
                        "since": stmt.excluded.since,
                        # once incomplete, always: collecting the day again cannot read
                        # back what the stream lost
                        "complete": ChannelStats.complete & stmt.excluded.complete,
                        "collected_at": func.now(),
                    },
                )
            )
            gapped = [r["channel_id"] for r in rows if not r["complete"]]
            if gapped:  # the gap is on record in that row now
                await session.execute(
                    update(Channel).where(Channel.id.in_(gapped)).values(feed_gap=False)
                )


async def collect(
    unit: UnitOfWork,
    sessions: SessionGate,
    *,
    gateway: Gateway,
    cipher: Cipher,
    policy: RetryPolicy,
    timezone: str,
    day: date | None = None,
    channel_ids: list[int] | None = None,
    bots_at_once: int | None = None,
    post_ages: Sequence[int] = (),
) -> StatsReport:
    """Collect ``day`` (default: yesterday in ``timezone``) for every followed channel,
    or for ``channel_ids``; every bot's channels at once (at most ``bots_at_once`` bots
    at a time). A channel Telegram asked to wait for is collected again by a
    COLLECT_CHANNEL_STATS job after the wait. The whole collection, when its bots
    belong to several worker processes, becomes one COLLECT_STATS part per owner, on its
    queue (this process's own included): the parts run at once."""
    day = day or previous_day(timezone)
    report = StatsReport(day=day)
    collector = _Collector(sessions, gateway, policy, timezone, day, report, post_ages)
    per_bot = await _followed(sessions, channel_ids)
    parts = await gateway.place(list(per_bot)) if channel_ids is None and per_bot else None
    if parts is not None:
        for queue, bot_ids in parts.items():
            ids = sorted(c.id for bot_id in bot_ids for c in per_bot.get(bot_id, (None, []))[1])
            report.moved += [(queue, channel_id) for channel_id in ids]
            kwargs = {"day": day.isoformat(), "channel_ids": ids}
            unit.enqueue(COLLECT_STATS, kwargs=kwargs, queue=queue)
        return report
    await run_shares(
        (collector.bot_share(bot, channels, cipher) for bot, channels in per_bot.values()),
        bots_at_once,
    )
    if report.collected or report.failed:  # one per collection (or part) that did something
        await events.emit(unit.session, Event.stats_collected, report.body())
    for queue, channel_id in report.moved:
        unit.enqueue(
            COLLECT_CHANNEL_STATS, channel_id, kwargs={"day": day.isoformat()}, queue=queue
        )
    for channel_id, seconds in report.postponed:
        unit.enqueue(
            COLLECT_CHANNEL_STATS, channel_id, kwargs={"day": day.isoformat()}, countdown=seconds
        )
    return report
