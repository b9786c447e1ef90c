"""Failover: a binding whose bot lost its rights moves to another bot of the fleet.

When a binding loses its rights (the sweep, a send, a check), ``fail_over`` asks the
other active bots, least-loaded first (arbitration.loads), whether they are admins that
can post in the channel — each bot asks only about itself, with one ``get_rights`` — and
moves the binding to the first that is. The binding row stays the same, so the posts
queued for it go out through the new bot. With no such bot the binding is ``invalid``
(cause ``rights``, the reason and the deep link to grant them), and the hourly sweep of
new bindings re-checks it. Every move, loss and recovery is a ``BindingEvent``.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.channels.arbitration import loads
from botmgr.channels.links import channel_ref
from botmgr.channels.schemas import deep_link
from botmgr.models import Binding, BindingEvent, BindingStatus, Bot, Channel, InvalidCause
from botmgr.security import Cipher, bot_account
from botmgr.telegram.gateway import Gateway, TelegramError
from botmgr.webhooks import events
from botmgr.webhooks.events import Event

RESTORED = "rights restored"


def record(
    session: AsyncSession, binding: Binding, from_bot: int | None, to_bot: int | None, why: str
) -> None:
    session.add(
        BindingEvent(binding_id=binding.id, from_bot_id=from_bot, to_bot_id=to_bot, why=why)
    )


def ordered(candidates: list[tuple[int, int]]) -> list[int]:
    """Bot ids, least-loaded first, ties to the smallest id (arbitration's order)."""
    return [bot_id for bot_id, _ in sorted(candidates, key=lambda pair: (pair[1], pair[0]))]


async def fail_over(
    session: AsyncSession,
    binding: Binding,
    channel: Channel,
    reason: str,
    *,
    gateway: Gateway,
    cipher: Cipher,
) -> bool:
    """The binding's bot lost its rights (``reason``). Move the binding to another bot
    that can post there (True), or leave it ``invalid`` with the reason and the deep link
    (False). The caller holds the binding's row lock."""
    old = binding.bot_id
    ref = channel_ref(channel)
    for bot_id in ordered([pair for pair in await loads(session) if pair[0] != old]):
        bot = await session.get_one(Bot, bot_id)
        try:
            rights = await gateway.get_rights(bot_account(bot, cipher), ref)
        except TelegramError:  # not an admin, flood, unreachable, token: not this one
            continue
        if rights.can_post:
            binding.bot_id = bot_id
            binding.status, binding.reason, binding.cause = BindingStatus.active, None, None
            record(session, binding, old, bot_id, f"failover: {reason}")
            await events.binding_event(
                session, Event.binding_moved, [binding.id], from_bot_id=old, why=reason
            )
            return True
    holder = await session.get_one(Bot, old)
    binding.status, binding.cause = BindingStatus.invalid, InvalidCause.rights.value
    binding.reason = f"{reason}; grant them: {deep_link(holder.username)}"
    record(session, binding, old, None, reason)
    await events.binding_event(session, Event.binding_invalid, [binding.id])
    return False


async def history(session: AsyncSession, binding_id: int) -> list[BindingEvent]:
    rows = await session.execute(
        select(BindingEvent).where(BindingEvent.binding_id == binding_id).order_by(BindingEvent.id)
    )
    return list(rows.scalars())


async def fail_over_lost(
    session: AsyncSession, binding_id: int, *, gateway: Gateway, cipher: Cipher
) -> bool:
    """The sweep wrote the binding ``invalid`` (rights lost): try to move it."""
    binding = (
        await session.execute(select(Binding).where(Binding.id == binding_id).with_for_update())
    ).scalar_one_or_none()
    if (
        binding is None
        or binding.status != BindingStatus.invalid
        or binding.cause != InvalidCause.rights.value
    ):
        return False
    channel = await session.get_one(Channel, binding.channel_id)
    return await fail_over(
        session, binding, channel, binding.reason or "rights lost", gateway=gateway, cipher=cipher
    )
