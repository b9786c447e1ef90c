"""The side effects of a binding turning ``active``, whichever path turned it (bind
with rights, the rights sweep, a check, a send): the channel's statistics start there,
and binding.activated goes to the webhooks (in the same transaction).

``channels.active_since`` is set to the moment (the transaction's ``now()``) when the
channel has no stream position yet and no earlier activation on record. No Telegram
call is made here — a sweep activating 10,000 bindings costs one statement; the first
collection learns the posts since that moment (stats/collect.py).
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.models import Binding, BindingStatus, Channel
from botmgr.webhooks import events
from botmgr.webhooks.events import Event


async def binding_activated(session: AsyncSession, binding_ids: Collection[int]) -> None:
    """Record that these bindings just became ``active`` (call it after the change)."""
    if not binding_ids:
        return
    await session.execute(
        update(Channel)
        .where(
            Channel.id.in_(
                # still active: a sweep's stale answer (its WHERE matched nothing) is no
                # activation; the ORM's pending change is flushed before this statement
                select(Binding.channel_id).where(
                    Binding.id.in_(list(binding_ids)), Binding.status == BindingStatus.active
                )
            ),
            Channel.active_since.is_(None),
            Channel.feed_pts.is_(None),
        )
        .values(active_since=func.now())
        .execution_options(synchronize_session=False)
    )
    await events.binding_event(
        session, Event.binding_activated, binding_ids, status=BindingStatus.active
    )
