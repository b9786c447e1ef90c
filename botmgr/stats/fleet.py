"""The fleet at a glance (the console's landing page): bots by status, bindings that need
the operator, posts failed in the last day with their reasons, the flood and pacing waits
in force now, and what comes next (scheduled posts, post samples).

Where waits live: a token login's FLOOD_WAIT is ``bots.login_not_before``; a post that
waits out a flood wait or an outage is ``queued`` with ``attempts`` > 0 and
``not_before`` ahead; any other task that does is a ``deferred_jobs`` row with
``retries`` > 0; the service's own pacing is in each worker's memory and exported to
Redis (``fleet:pace:<bot>``, botmgr/fleet/leases.py) as the wall-clock time each bucket
of the bot is spent until (read by ``pacing_waits``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.fleet.keys import FleetKeys
from botmgr.models import (
    LIVE,
    Binding,
    BindingStatus,
    Bot,
    Channel,
    DeferredJob,
    DeliveryStatus,
    Post,
    PostSample,
    PostStatus,
    WebhookDelivery,
    WebhookEndpoint,
)

LISTED = 20  # rows a panel lists (it says how many there are in all)


@dataclass(slots=True)
class Listing:
    """Some rows of a panel and how many there are in all."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0


@dataclass(slots=True)
class FleetOverview:
    bots: dict[str, int]  # status → bots
    bindings: dict[str, int]  # status → bindings (inactive left out)
    needing_action: Listing
    failed_posts: Listing
    login_floods: list[dict[str, Any]]  # bots that may not log in before a time
    waiting_posts: Listing  # posts waiting out a flood wait or an outage
    waiting_jobs: list[dict[str, Any]]  # deferred task retries, by task name
    scheduled_posts: Listing
    samples_next_hour: int  # post samples due within the hour


async def _counts(session: AsyncSession, column: Any, *where: Any) -> dict[str, int]:
    found = await session.execute(select(column, func.count()).where(*where).group_by(column))
    return {str(getattr(k, "value", k)): n for k, n in found}


async def overview(session: AsyncSession, *, now: datetime | None = None) -> FleetOverview:
    now = now or datetime.now(UTC)
    return FleetOverview(
        bots=await _counts(session, Bot.status),
        bindings=await _counts(session, Binding.status, Binding.status.in_(LIVE)),
        needing_action=await _needing_action(session),
        failed_posts=await _failed_posts(session, now - timedelta(hours=24)),
        login_floods=await _login_floods(session, now),
        waiting_posts=await _waiting_posts(session, now),
        waiting_jobs=await _waiting_jobs(session),
        scheduled_posts=await _scheduled_posts(session, now),
        samples_next_hour=(
            await session.execute(
                select(func.count())
                .select_from(PostSample)
                .where(PostSample.taken_at.is_(None), PostSample.due_at <= now + timedelta(hours=1))
            )
        ).scalar_one(),
    )


async def _needing_action(session: AsyncSession) -> Listing:
    """Bindings waiting for their bot to be made admin (``new``) or broken (``invalid``)."""
    where = Binding.status.in_((BindingStatus.new, BindingStatus.invalid))
    total = (
        await session.execute(select(func.count()).select_from(Binding).where(where))
    ).scalar_one()
    found = await session.execute(
        select(Binding, Channel, Bot)
        .join(Channel, Channel.id == Binding.channel_id)
        .join(Bot, Bot.id == Binding.bot_id)
        .where(where)
        .order_by(Binding.status.desc(), Binding.updated_at.desc())
        .limit(LISTED)
    )
    rows = [
        {
            "binding_id": b.id,
            "status": b.status.value,
            "reason": b.reason,
            "channel_id": c.id,
            "channel": c.title or c.reference,
            "bot_id": bot.id,
            "bot": bot.username,
            "since": b.updated_at,
        }
        for b, c, bot in found
    ]
    return Listing(rows, total)


async def _failed_posts(session: AsyncSession, since: datetime) -> Listing:
    where = (Post.status == PostStatus.failed, Post.updated_at >= since)
    total = (
        await session.execute(select(func.count()).select_from(Post).where(*where))
    ).scalar_one()
    found = await session.execute(
        select(Post.id, Post.error, Post.updated_at, Channel.id, Channel.title, Channel.reference)
        .join(Channel, Channel.id == Post.channel_id)
        .where(*where)
        .order_by(Post.updated_at.desc())
        .limit(LISTED)
    )
    rows = [
        {"post_id": p, "error": e, "at": at, "channel_id": c, "channel": t or r}
        for p, e, at, c, t, r in found
    ]
    return Listing(rows, total)


async def _login_floods(session: AsyncSession, now: datetime) -> list[dict[str, Any]]:
    found = await session.execute(
        select(Bot.id, Bot.username, Bot.login_not_before)
        .where(Bot.login_not_before > now)
        .order_by(Bot.login_not_before)
        .limit(LISTED)
    )
    return [
        {"bot_id": i, "bot": u, "until": t, "seconds": int((t - now).total_seconds())}
        for i, u, t in found
        if t is not None
    ]


async def _waiting_posts(session: AsyncSession, now: datetime) -> Listing:
    where = (Post.status == PostStatus.queued, Post.attempts > 0, Post.not_before > now)
    total = (
        await session.execute(select(func.count()).select_from(Post).where(*where))
    ).scalar_one()
    found = await session.execute(
        select(Post.id, Post.not_before, Post.attempts, Channel.title, Channel.reference)
        .join(Channel, Channel.id == Post.channel_id)
        .where(*where)
        .order_by(Post.not_before)
        .limit(LISTED)
    )
    rows = [
        {"post_id": p, "until": t, "attempts": a, "channel": title or ref}
        for p, t, a, title, ref in found
    ]
    return Listing(rows, total)


async def _waiting_jobs(session: AsyncSession) -> list[dict[str, Any]]:
    found = await session.execute(
        select(DeferredJob.name, func.count(), func.min(DeferredJob.due_at))
        .where(DeferredJob.retries > 0)
        .group_by(DeferredJob.name)
        .order_by(func.min(DeferredJob.due_at))
    )
    return [{"task": n.rsplit(".", 1)[-1], "count": c, "next": d} for n, c, d in found]


async def _scheduled_posts(session: AsyncSession, now: datetime) -> Listing:
    where = (Post.status == PostStatus.queued, Post.send_at > now)
    total = (
        await session.execute(select(func.count()).select_from(Post).where(*where))
    ).scalar_one()
    found = await session.execute(
        select(Post.id, Post.send_at, Post.markdown, Channel.title, Channel.reference)
        .join(Channel, Channel.id == Post.channel_id)
        .where(*where)
        .order_by(Post.send_at)
        .limit(10)
    )
    rows = [
        {"post_id": p, "at": at, "text": md[:80], "channel": title or ref}
        for p, at, md, title, ref in found
    ]
    return Listing(rows, total)


async def pacing_waits(redis: Redis, prefix: str, *, limit: int = 2000) -> list[dict[str, Any]]:
    """Bots whose exported pacing buckets are spent into the future: the bot's own
    budget (``bot``) and its busiest channel's, in seconds from now. Only bots used
    since their last export (a heartbeat) have a key; a few thousand keys at most."""
    keys = FleetKeys(prefix)
    now, waits = time.time(), []
    names = []
    async for key in redis.scan_iter(match=f"{keys.pace_prefix}*", count=500):
        names.append(key)
        if len(names) >= limit:
            break
    values = await redis.mget(names) if names else []
    for key, raw in zip(names, values, strict=True):
        try:
            pace = json.loads(raw)["pace"] if raw else {}
            name = key.decode() if isinstance(key, bytes) else str(key)
            bot_id = int(name.rsplit(":", 1)[-1])
        except (ValueError, KeyError, TypeError):
            continue
        own = float(pace.get("bot", 0)) - now
        channel = max((float(v) - now for k, v in pace.items() if k != "bot"), default=0.0)
        if own > 0 or channel > 0:
            waits.append(
                {
                    "bot_id": bot_id,
                    "bot": round(max(own, 0), 1),
                    "channel": round(max(channel, 0), 1),
                }
            )
    return sorted(waits, key=lambda w: -max(w["bot"], w["channel"]))[:LISTED]


async def webhook_failures(session: AsyncSession) -> list[dict[str, Any]]:
    """Webhook deliveries in trouble, newest first: given up on in the last day, or
    still retrying after a failed attempt (webhooks/delivery.py)."""
    since = datetime.now(UTC) - timedelta(hours=24)
    found = await session.execute(
        select(WebhookDelivery, WebhookEndpoint.url)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            (
                (WebhookDelivery.status == DeliveryStatus.failed)
                & (WebhookDelivery.updated_at >= since)
            )
            | ((WebhookDelivery.status == DeliveryStatus.pending) & (WebhookDelivery.attempts > 0))
        )
        .order_by(WebhookDelivery.id.desc())
        .limit(LISTED)
    )
    return [
        {
            "delivery": d.id,
            "webhook": d.endpoint_id,
            "url": url,
            "event": d.event,
            "status": d.status.value,
            "attempts": d.attempts,
            "last error": d.last_error or "",
        }
        for d, url in found
    ]
