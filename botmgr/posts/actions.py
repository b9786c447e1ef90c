"""The follow-up tasks on a sent post: edit, delete, pin/unpin (posts/lifecycle.py
publishes them). Each is safe to run twice — an edit that changes nothing, a delete of
what is gone and a repeated pin are successes — so a re-delivered or retried task does no
harm. FloodWait and TelegramUnavailable go up (the task retries by the one policy); what
Telegram refuses for good is a Refused outcome with Telegram's reason:

- MESSAGE_EDIT_TIME_EXPIRED / MESSAGE_DELETE_FORBIDDEN (TooLate) → 409,
- no right to edit, delete or pin (NotAdmin) → 409,
- the message is gone (MessageGone) → 409 for an edit or a pin; a delete is done,
- the text refused (MessageRejected) → 422; a revoked token → 503 (the bot is marked).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr import metrics
from botmgr.bots import service as bots
from botmgr.channels.links import channel_ref
from botmgr.errors import NotFound
from botmgr.models import Binding, Bot, Channel, Post, PostStatus
from botmgr.outcomes import Refused, Status
from botmgr.posts import options
from botmgr.posts.markdown import RenderedMessage
from botmgr.posts.renderer import render_accepted
from botmgr.posts.service import post_link
from botmgr.security import Cipher, bot_account
from botmgr.telegram.gateway import (
    BotAccount,
    ChannelRef,
    ChannelUnresolvable,
    Gateway,
    MessageRejected,
    NotAdmin,
    TokenInvalid,
)
from botmgr.telegram.rich import MessageGone, TooLate
from botmgr.webhooks import events
from botmgr.webhooks.events import Event

Action = Literal["edited", "deleted", "pinned", "unpinned"]


@dataclass(frozen=True, slots=True)
class ActionDone:
    post_id: int
    channel_id: int | None
    message_id: int | None
    link: str | None
    action: Action
    status = Status.ok

    def body(self) -> dict[str, Any]:
        return {
            "post_id": self.post_id,
            "channel_id": self.channel_id,
            "message_id": self.message_id,
            "link": self.link,
            "action": self.action,
        }


ActionOutcome = ActionDone | Refused

_ROWS = (
    select(Post, Channel, Bot)
    .join(Channel, Channel.id == Post.channel_id)
    .join(Binding, Binding.id == Post.binding_id)
    .join(Bot, Bot.id == Binding.bot_id)
    .where(Post.id == bindparam("post_id"))
    .with_for_update(of=Post)
)


@dataclass(frozen=True, slots=True)
class _Target:
    post: Post
    channel: Channel
    bot: Bot
    account: BotAccount
    ref: ChannelRef

    def done(self, action: Action) -> ActionDone:
        post = self.post
        return ActionDone(
            post.id,
            self.channel.tg_id,
            post.message_id,
            post_link(self.channel, post.message_id),
            action,
        )

    def refused(self, status: Status, message: str) -> Refused:
        return Refused(status, message, {"post_id": self.post.id, "channel_id": self.channel.tg_id})


async def _target(session: AsyncSession, post_id: int, cipher: Cipher) -> _Target:
    row = (await session.execute(_ROWS, {"post_id": post_id})).one_or_none()
    if row is None:
        raise NotFound("post not found")
    post, channel, bot = row
    return _Target(post, channel, bot, bot_account(bot, cipher), channel_ref(channel))


def _message_ids(post: Post) -> list[int]:
    return list(post.message_ids or ([post.message_id] if post.message_id else []))


async def _call(
    session: AsyncSession,
    target: _Target,
    what: str,
    call: Callable[[], Awaitable[None]],
    *,
    gone_ok: bool = False,
) -> Refused | None:
    """Run one gateway call; Telegram's final refusals become Refused (None: done).
    ``gone_ok``: a message no longer there is what the call wanted (a delete)."""
    try:
        await call()
    except (TooLate, NotAdmin, ChannelUnresolvable) as exc:
        return target.refused(Status.conflict, f"Telegram refused to {what} the post: {exc.reason}")
    except MessageGone as exc:
        if gone_ok:
            return None
        return target.refused(
            Status.conflict, f"the message is no longer in the channel ({exc.reason})"
        )
    except MessageRejected as exc:
        return target.refused(Status.invalid, f"Telegram refused the edit: {exc.reason}")
    except TokenInvalid as exc:
        await bots.token_rejected(session, target.bot.id, exc.reason)
        return target.refused(Status.unavailable, f"bot token rejected by Telegram: {exc.reason}")
    return None


def _not_sent(target: _Target, what: str) -> Refused | None:
    post = target.post
    if post.status != PostStatus.sent:
        return target.refused(Status.conflict, f"post is {post.status.value}: cannot {what} it")
    if not _message_ids(post):
        return target.refused(
            Status.conflict,
            f"the post's message id is unknown (its send's answer was lost): cannot {what} it",
        )
    return None


async def edit(
    session: AsyncSession,
    post_id: int,
    *,
    gateway: Gateway,
    cipher: Cipher,
    markdown: str | None = None,
    buttons: list[list[dict[str, str]]] | None = None,
) -> ActionOutcome:
    """EDIT_POST: the new text (a media post's caption) and/or buttons, then the row."""
    target = await _target(session, post_id, cipher)
    if (refused := _not_sent(target, "edit")) is not None:
        return refused
    post = target.post
    rendered: RenderedMessage | None = None
    if markdown is not None:
        try:
            rendered = (
                await render_accepted(markdown)
                if markdown.strip() or not post.media_ids
                else RenderedMessage("", [])
            )
        except ValueError as exc:
            return target.refused(Status.invalid, f"message: {exc}")

    async def call() -> None:
        await gateway.edit_message(
            target.account,
            target.ref,
            _message_ids(post)[0],  # an album's caption is on its first item
            rendered.text if rendered is not None else None,
            rendered.entities if rendered is not None else [],
            buttons=options.as_markup(buttons) if buttons is not None else None,
            no_preview=post.disable_preview,
        )

    if (refused := await _call(session, target, "edit", call)) is not None:
        return refused
    if markdown is not None:
        post.markdown = markdown
    if buttons is not None:
        post.buttons = buttons
    post.edited_at = datetime.now(UTC)
    await events.post_event(session, Event.post_edited, post, target.channel)
    return target.done("edited")


async def delete(
    session: AsyncSession, post_id: int, *, gateway: Gateway, cipher: Cipher, auto: bool = False
) -> ActionOutcome:
    """DELETE_POST: every message of the post (an album's too) out of the channel.
    ``auto``: its ``delete_after`` came due."""
    target = await _target(session, post_id, cipher)
    post = target.post
    if post.status == PostStatus.deleted:
        return target.done("deleted")
    if (refused := _not_sent(target, "delete")) is not None:
        return refused

    async def call() -> None:
        await gateway.delete_messages(target.account, target.ref, _message_ids(post))

    refused = await _call(session, target, "delete", call, gone_ok=True)
    if refused is not None:
        if auto:
            post.error = f"delete_after: {refused.message}"
        return refused
    post.status, post.deleted_at, post.pinned = PostStatus.deleted, datetime.now(UTC), False
    await events.post_event(session, Event.post_deleted, post, target.channel, auto=auto)
    metrics.post_status(post, "deleted")
    return target.done("deleted")


async def pin(
    session: AsyncSession,
    post_id: int,
    *,
    gateway: Gateway,
    cipher: Cipher,
    unpin: bool = False,
    silent: bool = True,
) -> ActionOutcome:
    """PIN_POST: pin (``silent``: no notification) or unpin the post's first message."""
    target = await _target(session, post_id, cipher)
    what = "unpin" if unpin else "pin"
    if (refused := _not_sent(target, what)) is not None:
        return refused
    post = target.post

    async def call() -> None:
        await gateway.pin_message(
            target.account, target.ref, _message_ids(post)[0], unpin=unpin, silent=silent
        )

    if (refused := await _call(session, target, what, call)) is not None:
        return refused
    post.pinned = not unpin
    return target.done("unpinned" if unpin else "pinned")
