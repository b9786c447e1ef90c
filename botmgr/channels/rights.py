"""May the bot post in the channel? The rule that turns Telegram's answer about the bot's
rights into a binding's status, and ``check_binding`` (task CHECK_BINDING), which the
hourly sweep also uses for the bindings it cannot answer in bulk."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.bots import service as bots
from botmgr.channels.activation import binding_activated
from botmgr.channels.adoption import adopt, attach_invite, unattached_invite
from botmgr.channels.failover import RESTORED, fail_over, record
from botmgr.channels.links import channel_ref
from botmgr.errors import NotFound
from botmgr.models import Binding, BindingStatus, Bot, BotStatus, Channel, InvalidCause
from botmgr.outcomes import Refused, Status
from botmgr.security import Cipher, bot_account
from botmgr.tasks.names import CHECK_BINDING
from botmgr.telegram.gateway import (
    ChannelUnresolvable,
    Gateway,
    NotAdmin,
    Rights,
    TokenInvalid,
)
from botmgr.uow import UnitOfWork
from botmgr.webhooks import events
from botmgr.webhooks.events import Event

WAITING = "waiting for the bot to be made an admin that can post"


@dataclass(frozen=True, slots=True)
class BindingChecked:
    binding_id: int
    binding_status: BindingStatus
    reason: str | None
    status = Status.ok

    @classmethod
    def of(cls, binding: Binding) -> BindingChecked:
        return cls(binding.id, binding.status, binding.reason)

    def body(self) -> dict[str, Any]:
        return {
            "binding_id": self.binding_id,
            "status": self.binding_status.value,
            "reason": self.reason,
        }


def apply_rights(binding: Binding, rights: Rights | str) -> None:
    """The outcome of asking Telegram about the bot's rights — its answer, or the
    reason it refused — applied to a ``new`` or ``active`` binding, or an ``invalid`` one
    whose cause is rights (it becomes ``active`` again when they are back)."""
    if isinstance(rights, str):
        _lost(binding, rights)
    elif rights.can_post:
        binding.status, binding.reason, binding.cause = BindingStatus.active, None, None
    else:
        _lost(
            binding,
            "the bot is not an admin"
            if not rights.is_admin
            else "the bot has no right to post messages",
        )


def _lost(binding: Binding, reason: str) -> None:
    if binding.status == BindingStatus.invalid:  # re-checked: still lost, reason stays
        binding.reason = binding.reason or f"rights lost: {reason}"
    elif binding.status == BindingStatus.active:
        binding.status, binding.cause = BindingStatus.invalid, InvalidCause.rights.value
        binding.reason = f"rights lost: {reason}"
    else:
        binding.reason = f"{WAITING} ({reason})"


def needs_session(channel: Channel) -> bool:
    """Whether checking this channel's binding may change rows besides the binding (an
    invite to attach, a numeric id to adopt): then only ``check_binding`` will do."""
    return unattached_invite(channel) or channel.title is None


def request_check(unit: UnitOfWork, binding_id: int) -> str:
    """Ask the worker to check the binding's rights now; returns the task id."""
    return unit.enqueue(CHECK_BINDING, binding_id)


async def load(session: AsyncSession, binding_id: int) -> tuple[Binding, Bot, Channel]:
    binding = (
        await session.execute(select(Binding).where(Binding.id == binding_id).with_for_update())
    ).scalar_one_or_none()
    if binding is None:
        raise NotFound("binding not found")
    bot = await session.get_one(Bot, binding.bot_id)
    channel = await session.get_one(Channel, binding.channel_id)
    return binding, bot, channel


async def check_binding(
    session: AsyncSession, binding_id: int, *, gateway: Gateway, cipher: Cipher
) -> BindingChecked | Refused:
    """Is the bot an admin that can post? ``new`` → ``active`` when it is; ``active`` →
    ``invalid`` (with the reason) when it no longer is. ``invalid`` and ``inactive``
    bindings are left as they are (binding the channel again revives them), except an
    ``invalid`` one whose cause is rights: it becomes ``active`` when they are back. A
    binding that loses its rights fails over to another bot (channels.failover).
    FloodWait and TelegramUnavailable go up for a retry."""
    binding, bot, channel = await load(session, binding_id)
    rechecked = binding.status == BindingStatus.invalid and binding.cause == InvalidCause.rights
    if binding.status == BindingStatus.inactive or (
        binding.status == BindingStatus.invalid and not rechecked
    ):
        return BindingChecked.of(binding)
    if bot.status != BotStatus.active:
        was = binding.status
        binding.status, binding.reason = BindingStatus.invalid, f"bot is {bot.status.value}"
        binding.cause = InvalidCause.token.value
        if was != BindingStatus.invalid:
            await events.binding_event(session, Event.binding_invalid, [binding.id])
        return BindingChecked.of(binding)
    binding.last_checked_at = datetime.now(UTC)
    account = bot_account(bot, cipher)
    try:
        if unattached_invite(channel):
            if not await attach_invite(session, binding, bot, channel, account, gateway):
                binding.reason = WAITING
                return BindingChecked.of(binding)
        elif channel.title is None:  # bound by a numeric id the bot could not see then
            info = await gateway.resolve_channel(account, channel_ref(channel))
            adopted = await adopt(session, binding, channel, info)
            if isinstance(adopted, Refused):
                return adopted
            channel = adopted
        rights: Rights | str = await gateway.get_rights(account, channel_ref(channel))
    except (NotAdmin, ChannelUnresolvable) as exc:
        rights = exc.reason
    except TokenInvalid as exc:
        await bots.token_rejected(session, bot.id, exc.reason)
        return Refused(Status.unavailable, f"bot token rejected by Telegram: {exc.reason}")
    before = binding.status
    apply_rights(binding, rights)
    if before != BindingStatus.active and binding.status == BindingStatus.active:
        await binding_activated(session, [binding.id])
    if before == BindingStatus.active and binding.status == BindingStatus.invalid:
        await fail_over(
            session,
            binding,
            channel,
            binding.reason or "rights lost",
            gateway=gateway,
            cipher=cipher,
        )
    elif before == BindingStatus.invalid and binding.status == BindingStatus.active:
        record(session, binding, None, binding.bot_id, RESTORED)
    return BindingChecked.of(binding)
