"""The bind task (BIND_CHANNEL): resolve a freshly bound channel through its bot, store
what Telegram says about it, and — when the bot already is an admin that can post —
make the binding active at once instead of at the next hourly check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.bots import service as bots
from botmgr.channels.activation import binding_activated
from botmgr.channels.adoption import adopt, unattached_invite
from botmgr.channels.links import channel_ref
from botmgr.channels.rights import WAITING, apply_rights, load
from botmgr.channels.schemas import BAD_CHANNEL, BOUND, deep_link
from botmgr.models import Binding, BindingStatus, Bot, BotStatus, Channel
from botmgr.outcomes import Refused, Status
from botmgr.security import Cipher, bot_account
from botmgr.telegram.gateway import (
    BotAccount,
    ChannelUnresolvable,
    Gateway,
    NotAdmin,
    Rights,
    TelegramError,
    TokenInvalid,
)
from botmgr.webhooks import events
from botmgr.webhooks.events import Event


@dataclass(frozen=True, slots=True)
class ChannelBound:
    channel_id: int | None
    bot_username: str
    binding_id: int
    binding_status: BindingStatus
    status = Status.ok

    @classmethod
    def of(cls, binding: Binding, bot: Bot, channel: Channel) -> ChannelBound:
        return cls(channel.tg_id, bot.username, binding.id, binding.status)

    def body(self) -> dict[str, Any]:
        return {
            "channel_id": self.channel_id,
            "bot_link": f"@{self.bot_username}",
            "deep_link": deep_link(self.bot_username),
            "message": BOUND,
            "binding_id": self.binding_id,
            "status": self.binding_status.value,
        }


async def resolve_binding(
    session: AsyncSession, binding_id: int, *, gateway: Gateway, cipher: Cipher
) -> ChannelBound | Refused:
    """FloodWait and TelegramUnavailable go up for a retry; the rest is an outcome."""
    binding, bot, channel = await load(session, binding_id)
    if binding.status == BindingStatus.inactive:
        return Refused(Status.conflict, "the binding was removed", {"binding_id": binding.id})
    if bot.status != BotStatus.active:
        if binding.status != BindingStatus.invalid:  # keep the reason it got (a deletion)
            await _invalid(session, binding, f"bot is {bot.status.value}")
        return Refused(
            Status.unavailable, f"bot {bot.id} is {bot.status.value}", {"binding_id": binding.id}
        )
    binding.last_checked_at = datetime.now(UTC)
    if unattached_invite(channel):
        # An invite link: no bot can resolve it; attached when the bot is made admin.
        binding.reason = WAITING
        return ChannelBound.of(binding, bot, channel)
    account = bot_account(bot, cipher)
    try:
        info = await gateway.resolve_channel(account, channel_ref(channel))
    except ChannelUnresolvable as exc:
        if channel.username is None:  # a numeric id the bot may not see until added
            binding.reason = f"{WAITING} (channel not visible to the bot yet)"
            return ChannelBound.of(binding, bot, channel)
        await _invalid(session, binding, exc.reason)
        return Refused(Status.unavailable, BAD_CHANNEL, {"binding_id": binding.id})
    except TokenInvalid as exc:
        await bots.token_rejected(session, bot.id, exc.reason)
        return Refused(Status.unavailable, f"bot token rejected by Telegram: {exc.reason}")
    adopted = await adopt(session, binding, channel, info)
    if isinstance(adopted, Refused):
        return adopted
    if binding.status == BindingStatus.new:
        await _check_now(binding, account, adopted, gateway)
        if binding.status in (BindingStatus.active,):  # (mypy keeps the narrowed `new`)
            await binding_activated(session, [binding.id])
    return ChannelBound.of(binding, bot, adopted)


async def _invalid(session: AsyncSession, binding: Binding, reason: str) -> None:
    """The binding cannot be served (binding.invalid, unless it was already: a re-run)."""
    was = binding.status
    binding.status, binding.reason = BindingStatus.invalid, reason
    if was != BindingStatus.invalid:
        await events.binding_event(session, Event.binding_invalid, [binding.id])


async def _check_now(
    binding: Binding, account: BotAccount, channel: Channel, gateway: Gateway
) -> None:
    """Any failure here only leaves the binding waiting for the hourly check."""
    try:
        rights: Rights | str = await gateway.get_rights(account, channel_ref(channel))
    except (NotAdmin, ChannelUnresolvable) as exc:
        rights = exc.reason
    except TelegramError as exc:
        binding.reason = f"{WAITING} (not checked yet: {exc.reason})"
        return
    apply_rights(binding, rights)
