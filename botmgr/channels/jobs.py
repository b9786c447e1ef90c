"""The Telegram side of bindings, run by the worker: resolving a freshly bound channel
through its bot, and ``check_binding`` (does the bot have the right to post?), which the
hourly checks reuse. Both take a binding id, reload rows and return a task result;
FLOOD_WAIT and an unreachable Telegram raise RetryLater."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.bots import service as bots
from botmgr.channels.schemas import BAD_CHANNEL, BOUND, deep_link
from botmgr.models import Binding, BindingStatus, Bot, BotStatus, Channel
from botmgr.security import Cipher
from botmgr.tasks import results
from botmgr.tasks.results import RetryLater, TaskResult
from botmgr.telegram.gateway import (
    BotAccount,
    ChannelInfo,
    ChannelRef,
    ChannelUnresolvable,
    FloodWait,
    Gateway,
    NotAdmin,
    Rights,
    TelegramError,
    TelegramUnavailable,
    TokenInvalid,
)

WAITING = "waiting for the bot to be made an admin that can post"


def _now() -> datetime:
    return datetime.now(UTC)


async def _load(session: AsyncSession, binding_id: int) -> tuple[Binding, Bot, Channel] | None:
    binding = (
        await session.execute(select(Binding).where(Binding.id == binding_id).with_for_update())
    ).scalar_one_or_none()
    if binding is None:
        return None
    bot = await session.get_one(Bot, binding.bot_id)
    channel = await session.get_one(Channel, binding.channel_id)
    return binding, bot, channel


def _ref(channel: Channel) -> ChannelRef:
    return ChannelRef(
        tg_id=channel.tg_id, username=channel.username, access_hash=channel.access_hash
    )


def _unattached_invite(channel: Channel) -> bool:
    return channel.tg_id is None and channel.invite_hash is not None


def _bound(binding: Binding, bot: Bot, channel: Channel) -> TaskResult:
    return results.ok(
        {
            "channel_id": channel.tg_id,
            "bot_link": f"@{bot.username}",
            "deep_link": deep_link(bot.username),
            "message": BOUND,
            "binding_id": binding.id,
            "status": binding.status.value,
        }
    )


async def _adopt(
    session: AsyncSession, binding: Binding, channel: Channel, info: ChannelInfo
) -> Channel | TaskResult:
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
            return results.fail(409, "Канал уже привязан", binding_id=taken)
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


async def _telegram_failure(session: AsyncSession, bot: Bot, exc: Exception) -> TaskResult:
    if isinstance(exc, FloodWait):
        raise RetryLater(max(1, exc.seconds), exc.reason) from exc
    if isinstance(exc, TelegramUnavailable):
        raise RetryLater(5, exc.reason) from exc
    assert isinstance(exc, TokenInvalid)
    await bots.invalidate(
        session, bot, status=BotStatus.invalid, reason=f"token rejected: {exc.reason}"
    )
    return results.fail(503, f"bot token rejected by Telegram: {exc.reason}")


async def resolve_binding(
    session: AsyncSession, binding_id: int, *, gateway: Gateway, cipher: Cipher
) -> TaskResult:
    loaded = await _load(session, binding_id)
    if loaded is None:
        return results.fail(404, "binding not found")
    binding, bot, channel = loaded
    if binding.status == BindingStatus.inactive:
        return results.fail(409, "the binding was removed", binding_id=binding.id)
    if bot.status != BotStatus.active:
        binding.status, binding.reason = BindingStatus.invalid, f"bot is {bot.status.value}"
        return results.fail(503, f"bot {bot.id} is {bot.status.value}", binding_id=binding.id)
    binding.last_checked_at = _now()
    if _unattached_invite(channel):
        # An invite link: no bot can resolve it; attached when the bot is made admin.
        binding.reason = WAITING
        return _bound(binding, bot, channel)
    try:
        info = await gateway.resolve_channel(bots.account(bot, cipher), _ref(channel))
    except ChannelUnresolvable as exc:
        if channel.username is None:  # a numeric id the bot may not see until added
            binding.reason = f"{WAITING} (channel not visible to the bot yet)"
            return _bound(binding, bot, channel)
        binding.status, binding.reason = BindingStatus.invalid, exc.reason
        return results.fail(503, BAD_CHANNEL, binding_id=binding.id)
    except (FloodWait, TelegramUnavailable, TokenInvalid) as exc:
        return await _telegram_failure(session, bot, exc)
    adopted = await _adopt(session, binding, channel, info)
    if isinstance(adopted, dict):
        return adopted
    if binding.status == BindingStatus.new:
        await _check_now(
            binding, account=bots.account(bot, cipher), channel=adopted, gateway=gateway
        )
    return _bound(binding, bot, adopted)


async def _check_now(
    binding: Binding, *, account: BotAccount, channel: Channel, gateway: Gateway
) -> None:
    """A bot that is already an admin able to post makes the binding usable at once,
    not at the next hourly check. Any failure here only leaves it waiting."""
    try:
        rights: Rights | str = await gateway.get_rights(account, _ref(channel))
    except (NotAdmin, ChannelUnresolvable) as exc:
        rights = exc.reason
    except TelegramError as exc:
        binding.reason = f"{WAITING} (not checked yet: {exc.reason})"
        return
    apply_rights(binding, rights)


async def _attach_invite(
    session: AsyncSession,
    binding: Binding,
    bot: Bot,
    channel: Channel,
    account: BotAccount,
    gateway: Gateway,
) -> bool:
    """Match channels the bot was made admin of to this unresolved invite binding: the
    first admin channel not known yet goes to the bot's oldest waiting invite binding."""
    for info in await gateway.admin_channels(account):
        known = (
            await session.execute(select(Channel.id).where(Channel.tg_id == info.tg_id))
        ).first()
        if known is None:
            oldest = (
                await session.execute(
                    select(Binding.id)
                    .join(Channel, Channel.id == Binding.channel_id)
                    .where(
                        Binding.bot_id == bot.id,
                        Binding.status == BindingStatus.new,
                        Channel.tg_id.is_(None),
                        Channel.invite_hash.is_not(None),
                    )
                    .order_by(Binding.id)
                    .limit(1)
                )
            ).scalar_one_or_none()
            if oldest == binding.id:
                channel.tg_id, channel.title, channel.username = (
                    info.tg_id,
                    info.title,
                    info.username,
                )
                channel.access_hash = info.access_hash
                await session.flush()
                return True
    return False


async def check_binding(
    session: AsyncSession, binding_id: int, *, gateway: Gateway, cipher: Cipher
) -> TaskResult:
    """Is the bot an admin that can post? ``new`` → ``active`` when it is; ``active`` →
    ``invalid`` (with the reason) when it no longer is. ``invalid`` and ``inactive``
    bindings are left as they are: binding the channel again revives it."""
    loaded = await _load(session, binding_id)
    if loaded is None:
        return results.fail(404, "binding not found")
    binding, bot, channel = loaded
    if binding.status in (BindingStatus.inactive, BindingStatus.invalid):
        return _checked(binding)
    if bot.status != BotStatus.active:
        binding.status, binding.reason = BindingStatus.invalid, f"bot is {bot.status.value}"
        return _checked(binding)
    binding.last_checked_at = _now()
    account = bots.account(bot, cipher)
    try:
        if _unattached_invite(channel):
            if not await _attach_invite(session, binding, bot, channel, account, gateway):
                binding.reason = WAITING
                return _checked(binding)
        elif channel.title is None:  # bound by a numeric id the bot could not see then
            adopted = await _adopt(
                session, binding, channel, await gateway.resolve_channel(account, _ref(channel))
            )
            if isinstance(adopted, dict):
                return adopted
            channel = adopted
        rights = await gateway.get_rights(account, _ref(channel))
    except (NotAdmin, ChannelUnresolvable) as exc:
        apply_rights(binding, exc.reason)
        return _checked(binding)
    except (FloodWait, TelegramUnavailable, TokenInvalid) as exc:
        return await _telegram_failure(session, bot, exc)
    apply_rights(binding, rights)
    return _checked(binding)


def needs_session(channel: Channel) -> bool:
    """Whether checking this channel's binding may change rows besides the binding (an
    invite to attach, a numeric id to adopt): then only ``check_binding`` will do."""
    return _unattached_invite(channel) or channel.title is None


def channel_ref(channel: Channel) -> ChannelRef:
    return _ref(channel)


def apply_rights(binding: Binding, rights: Rights | str) -> None:
    """The outcome of asking Telegram about the bot's rights — its answer, or the
    reason it refused — applied to a ``new`` or ``active`` binding."""
    if isinstance(rights, str):
        _lost(binding, rights)
    elif rights.can_post:
        binding.status, binding.reason = BindingStatus.active, None
    else:
        _lost(
            binding,
            "the bot is not an admin"
            if not rights.is_admin
            else "the bot has no right to post messages",
        )


def _lost(binding: Binding, reason: str) -> None:
    if binding.status == BindingStatus.active:
        binding.status = BindingStatus.invalid
        binding.reason = f"rights lost: {reason}"
    else:
        binding.reason = f"{WAITING} ({reason})"


def _checked(binding: Binding) -> TaskResult:
    return results.ok(
        {"binding_id": binding.id, "status": binding.status.value, "reason": binding.reason}
    )
