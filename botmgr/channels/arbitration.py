"""Choosing the bot for a new binding: the least-loaded active bot.

Load = number of the bot's bindings in status ``new`` or ``active``; ties go to the
lowest bot id, so the choice is deterministic. Race safety: callers hold
``ARBITRATION_LOCK`` (a transaction-level advisory lock) from the choice until their
transaction commits the new binding, so concurrent binds see each other's rows and the
distribution stays within one of even.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.models import Binding, BindingStatus, Bot, BotStatus, Channel

ARBITRATION_LOCK = 0x626F746D6772  # "botmgr": any constant shared by all binders
LOADED = (BindingStatus.new, BindingStatus.active)


def least_loaded(loads: Iterable[tuple[int, int]]) -> int | None:
    """The bot id with the smallest load, ties to the smallest id; None if no bots."""
    best = min(loads, key=lambda pair: (pair[1], pair[0]), default=None)
    return best[0] if best else None


async def lock(session: AsyncSession) -> None:
    await session.execute(select(func.pg_advisory_xact_lock(ARBITRATION_LOCK)))


async def loads(session: AsyncSession) -> list[tuple[int, int]]:
    """(bot id, load) for every active bot."""
    rows = await session.execute(
        select(Bot.id, func.count(Binding.id))
        .outerjoin(Binding, and_(Binding.bot_id == Bot.id, Binding.status.in_(LOADED)))
        .where(Bot.status == BotStatus.active)
        .group_by(Bot.id)
    )
    return [(bot_id, count) for bot_id, count in rows]


async def choose_bot(session: AsyncSession, *, free_for_invite: bool = False) -> int | None:
    """Call with ``lock`` held. ``free_for_invite``: prefer bots with no invite-link
    binding waiting for its channel: a bot with two waiting attaches neither until one
    is unbound (adoption.attach_invite never guesses). Only when every bot already waits
    for one does the least-loaded of all get the second."""
    candidates = await loads(session)
    if free_for_invite:
        waiting = (
            select(Binding.bot_id)
            .join(Channel, Channel.id == Binding.channel_id)
            .where(
                Binding.status == BindingStatus.new,
                Channel.tg_id.is_(None),
                Channel.invite_hash.is_not(None),
            )
        )
        busy = set((await session.execute(waiting)).scalars())
        free = [(bot_id, load) for bot_id, load in candidates if bot_id not in busy]
        candidates = free or candidates
    return least_loaded(candidates)
