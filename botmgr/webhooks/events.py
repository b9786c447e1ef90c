"""The events a webhook endpoint may subscribe to, and the outbox they are written to.

A change that raises an event calls ``emit`` (or one of the helpers below) with the
session of the change itself: one ``webhook_deliveries`` row per endpoint subscribed to
the event is added in that very transaction — committed with the change, or rolled back
with it; never one without the other. When the session is a unit of work's
(uow.unit_of), each row's delivery task is collected in the unit and published after
its commit, as an ``optional`` job (a refused publish does not fail the work; the row
stays for the reconciler). A session of its own (a sweep's share, a stats collection's
write) leaves the rows undispatched: the reconciler publishes them within a period.

With no endpoint subscribed, emitting costs one indexed read and writes nothing.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.models import (
    Binding,
    BindingStatus,
    Bot,
    Channel,
    DeliveryStatus,
    Post,
    WebhookDelivery,
    WebhookEndpoint,
)
from botmgr.posts.queries import link
from botmgr.tasks.names import DELIVER_WEBHOOK
from botmgr.uow import UnitOfWork, unit_of


class Event(enum.StrEnum):
    post_sent = "post.sent"
    post_failed = "post.failed"
    post_edited = "post.edited"
    post_deleted = "post.deleted"
    binding_activated = "binding.activated"
    binding_invalid = "binding.invalid"
    binding_moved = "binding.moved"
    bot_invalid = "bot.invalid"
    stats_collected = "stats.collected"


EVENTS = tuple(e.value for e in Event)


async def emit(session: AsyncSession, event: Event, data: dict[str, Any]) -> None:
    """Write ``event`` with ``data`` (JSON) to the outbox of every subscribed endpoint."""
    await emit_many(session, event, [data])


async def emit_many(session: AsyncSession, event: Event, items: Sequence[dict[str, Any]]) -> None:
    """One event per item of ``items`` (a sweep's activations): one read, one insert."""
    if not items:
        return
    endpoints = list(
        (
            await session.execute(
                select(WebhookEndpoint.id).where(
                    WebhookEndpoint.enabled, WebhookEndpoint.events.contains([event.value])
                )
            )
        ).scalars()
    )
    if not endpoints:
        return
    now = datetime.now(UTC)
    unit = unit_of(session)
    rows = [
        {
            "endpoint_id": endpoint_id,
            "event_id": event_id,
            "event": event.value,
            "data": data,
            "status": DeliveryStatus.pending,
            "next_attempt_at": now,
            "created_at": now,
            # A task goes out after the commit (unit), or the reconciler sends it.
            "dispatched_at": now if unit is not None else None,
        }
        for data in items
        for event_id in (str(uuid.uuid4()),)
        for endpoint_id in endpoints
    ]
    ids = (
        await session.execute(insert(WebhookDelivery).returning(WebhookDelivery.id), rows)
    ).scalars()
    if unit is not None:
        for delivery_id in ids:
            publish(unit, delivery_id)


def publish(unit: UnitOfWork, delivery_id: int, countdown: float | None = None) -> None:
    """Collect the delivery's attempt in ``unit`` (the caller set ``dispatched_at``); if
    the broker refuses it, no task is out and the reconciler publishes it when due."""

    async def undispatched(session: AsyncSession) -> None:
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(dispatched_at=None)
        )

    unit.enqueue(
        DELIVER_WEBHOOK, delivery_id, countdown=countdown, on_refused=undispatched, optional=True
    )


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def post_data(post: Post, channel: Channel, **more: Any) -> dict[str, Any]:
    """What every post event says about the post."""
    return {
        "post_id": post.id,
        "channel_id": channel.tg_id,
        "group_id": post.group_id,
        "status": post.status.value,
        "message_id": post.message_id,
        "message_ids": list(post.message_ids or ()),
        "link": link(channel.tg_id, channel.username, post.message_id),
        **more,
    }


async def post_event(
    session: AsyncSession, event: Event, post: Post, channel: Channel, **more: Any
) -> None:
    data = post_data(post, channel, **more)
    if event == Event.post_sent:
        data["sent_at"] = _when(post.sent_at)
    elif event == Event.post_failed:
        data["error"] = post.error
    elif event == Event.post_edited:
        data["edited_at"] = _when(post.edited_at)
    elif event == Event.post_deleted:
        data["deleted_at"] = _when(post.deleted_at)
    await emit(session, event, data)


async def binding_event(
    session: AsyncSession,
    event: Event,
    binding_ids: Collection[int],
    *,
    status: BindingStatus | None = None,
    **more: Any,
) -> None:
    """``event`` for each binding (that is in ``status``), as the rows are now (the ORM's
    pending change is flushed before the read)."""
    if not binding_ids:
        return
    stmt = (
        select(Binding, Channel)
        .join(Channel, Channel.id == Binding.channel_id)
        .where(Binding.id.in_(list(binding_ids)))
        .order_by(Binding.id)
    )
    if status is not None:
        stmt = stmt.where(Binding.status == status)
    rows = await session.execute(stmt)
    items = [
        {
            "binding_id": binding.id,
            "bot_id": binding.bot_id,
            "channel_id": channel.tg_id,
            "channel_username": channel.username,
            "channel_title": channel.title,
            "status": binding.status.value,
            "reason": binding.reason,
            "cause": binding.cause,
            **more,
        }
        for binding, channel in rows.all()
    ]
    await emit_many(session, event, items)


async def bot_invalid(session: AsyncSession, bot: Bot) -> None:
    data = {
        "bot_id": bot.id,
        "tg_id": bot.tg_id,
        "username": bot.username,
        "status": bot.status.value,
        "reason": bot.status_reason,
    }
    await emit(session, Event.bot_invalid, data)
