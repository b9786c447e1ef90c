"""The parts of a send attempt that talk to Telegram: one attempt to put a post in its
channel (text, a file, or an album, with its options), and what a send does when the
bot was refused for lack of rights (failover to another bot, never twice)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.channels import failover
from botmgr.models import Binding, BindingStatus, Bot, Channel, Post
from botmgr.posts import options
from botmgr.posts.markdown import RenderedMessage
from botmgr.security import Cipher
from botmgr.telegram.gateway import BotAccount, ChannelRef, Gateway
from botmgr.telegram.rich import MediaFile, PostOptions


async def deliver_once(
    gateway: Gateway,
    account: BotAccount,
    ref: ChannelRef,
    post: Post,
    rendered: RenderedMessage,
    files: Sequence[MediaFile],
) -> list[int]:
    """One attempt to put the post in the channel; its message ids. The same random
    ids on every attempt: Telegram dedupes a repeat (AlreadyPosted)."""
    sending = PostOptions(
        silent=post.silent,
        no_preview=post.disable_preview,
        buttons=options.as_markup(post.buttons or []),
    )
    if files:
        return await gateway.send_media(
            account,
            ref,
            files,
            rendered.text,
            rendered.entities,
            random_ids=post.item_random_ids or [post.random_id],
            options=sending,
        )
    message_id = await gateway.send_message(
        account,
        ref,
        rendered.text,
        rendered.entities,
        random_id=post.random_id,
        options=sending,
    )
    return [message_id]


FAILOVER_ATTEMPTS = 3


def uncertain(post: Post, bot: Bot) -> str:
    return (
        f"not re-sent through bot {bot.id} after failover: an attempt through bot "
        f"{post.uncertain_bot_id} had an unknown outcome and may have reached the channel"
    )


async def moved(
    session: AsyncSession,
    binding: Binding,
    bot: Bot,
    channel: Channel,
    reason: str,
    gateway: Gateway,
    cipher: Cipher,
) -> Bot | None:
    """The bot was refused for lack of rights: the bot the binding has now (another
    send or a sweep moved it meanwhile, or failover moves it now), or None (invalid)."""
    await session.execute(
        select(Binding)
        .where(Binding.id == binding.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if binding.status != BindingStatus.active:
        return None
    if binding.bot_id != bot.id:
        return await session.get_one(Bot, binding.bot_id)
    binding.last_checked_at = datetime.now(UTC)
    if await failover.fail_over(
        session, binding, channel, f"rights lost: {reason}", gateway=gateway, cipher=cipher
    ):
        return await session.get_one(Bot, binding.bot_id)
    return None
