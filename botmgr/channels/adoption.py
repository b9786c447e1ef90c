"""Writing what Telegram says about a channel into the rows that name it: a name or id
resolved by the bot (``adopt``), or an invite-link binding matched to a channel the bot
was made admin of (``attach_invite``)."""

from __future__ import annotations

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.models import Binding, BindingStatus, Bot, Channel
from botmgr.outcomes import Refused, Status
from botmgr.telegram.gateway import BotAccount, ChannelInfo, Gateway


def unattached_invite(channel: Channel) -> bool:
    """Bound by an invite link that no bot could resolve yet (bots cannot join)."""
    return channel.tg_id is None and channel.invite_hash is not None


async def adopt(
    session: AsyncSession, binding: Binding, channel: Channel, info: ChannelInfo
) -> Channel | Refused:
    """Store what Telegram said about the channel. A name can turn out to be a channel
    already known by its id (another row): then this row was only a placeholder for the
    name. If the known channel has a live binding, this bind is a duplicate and leaves no
    trace; otherwise the placeholder's bindings move there and the placeholder goes."""
    other = (
        await session.execute(
            select(Channel).where(Channel.tg_id == info.tg_id, Channel.id != channel.id)
        )
    ).scalar_one_or_none()
    if other is not None:
        taken = (
            await session.execute(
                select(Binding.id).where(
                    Binding.channel_id == other.id, Binding.status != BindingStatus.inactive
                )
            )
        ).scalar_one_or_none()
        if taken is not None:
            await session.delete(binding)
            await session.flush()
            await _drop_if_unused(session, channel)
            return Refused(Status.conflict, "Канал уже привязан", {"binding_id": taken})
        await session.execute(
            update(Binding).where(Binding.channel_id == channel.id).values(channel_id=other.id)
        )
        await session.refresh(binding)
        await _drop_if_unused(session, channel)
        channel = other
    channel.tg_id, channel.title = info.tg_id, info.title
    channel.username = info.username
    channel.access_hash = info.access_hash if info.access_hash is not None else channel.access_hash
    await session.flush()
    return channel


async def _drop_if_unused(session: AsyncSession, channel: Channel) -> None:
    used = (
        await session.execute(select(Binding.id).where(Binding.channel_id == channel.id))
    ).first()
    if used is None:
        await session.delete(channel)
        await session.flush()


def pending_invites(bot_id: int) -> Select[int]:
    """The bot's invite-link bindings still waiting for their channel."""
    return (
        select(Binding.id)
        .join(Channel, Channel.id == Binding.channel_id)
        .where(
            Binding.bot_id == bot_id,
            Binding.status == BindingStatus.new,
            Channel.tg_id.is_(None),
            Channel.invite_hash.is_not(None),
        )
    )


async def attach_invite(
    session: AsyncSession,
    binding: Binding,
    bot: Bot,
    channel: Channel,
    account: BotAccount,
    gateway: Gateway,
) -> bool:
    """Attach this unresolved invite binding to the channel the bot was made admin of
    for it. A bot cannot resolve an invite link, so the match is by elimination, and a
    wrong attachment is worse than a late one. The rule (never wrong, maybe late):

    - the binding must be its bot's only pending invite binding (``start_bind`` gives a
      bot at most one at a time: two would be indistinguishable);
    - candidates are the channels the bot is admin of that no row knows yet and that it
      was made admin of at or after the binding was created (to the second: Telegram's
      update dates are whole seconds). Channels it administered before — real bots
      often are admins elsewhere — or whose promotion date is unknown are excluded;
    - exactly one candidate is attached; none or several: the binding keeps waiting.
    """
    pending = (await session.execute(pending_invites(bot.id).limit(2))).scalars().all()
    if list(pending) != [binding.id]:
        return False
    created = int(binding.created_at.timestamp())
    candidates: list[ChannelInfo] = []
    for info in await gateway.admin_channels(account):
        if info.admin_since is None or info.admin_since.timestamp() < created:
            continue
        known = (
            await session.execute(select(Channel.id).where(Channel.tg_id == info.tg_id))
        ).first()
        if known is None:
            candidates.append(info)
    if len(candidates) != 1:
        return False
    info = candidates[0]
    channel.tg_id, channel.title, channel.username = info.tg_id, info.title, info.username
    channel.access_hash = info.access_hash
    await session.flush()
    return True
