"""Posting Markdown into a channel, exactly once.

The API writes the Post (``queued``, a random ``random_id``) and commits before the task
is enqueued. The task sends with that same ``random_id`` on every attempt, so a retried
or re-delivered task cannot post twice: Telegram answers RANDOM_ID_DUPLICATE, which the
gateway raises as AlreadyPosted and which is recorded as sent (message id unknown).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.bots import service as bots
from botmgr.channels.links import BadReference, parse_channel_id
from botmgr.errors import Conflict, Invalid, NotFound
from botmgr.models import Binding, BindingStatus, Bot, BotStatus, Channel, Post, PostStatus
from botmgr.posts.markdown import MessageTooLong, render
from botmgr.security import Cipher
from botmgr.tasks import results
from botmgr.tasks.results import RetryLater, TaskResult
from botmgr.telegram.gateway import (
    AlreadyPosted,
    ChannelRef,
    ChannelUnresolvable,
    FloodWait,
    Gateway,
    MessageRejected,
    NotAdmin,
    TelegramUnavailable,
    TokenInvalid,
)


async def enqueue(
    session: AsyncSession, *, channel_id: int | str, markdown: str, task_id: str
) -> Post:
    """Validate and record a post; the caller commits, then enqueues ``task_id``."""
    try:
        tg_id = parse_channel_id(channel_id)
    except BadReference as exc:
        raise Invalid("channel_id must be a Telegram channel id (bare or -100…)") from exc
    channel = (
        await session.execute(select(Channel).where(Channel.tg_id == tg_id))
    ).scalar_one_or_none()
    if channel is None:
        raise NotFound("channel not found")
    binding = (
        await session.execute(
            select(Binding).where(
                Binding.channel_id == channel.id, Binding.status == BindingStatus.active
            )
        )
    ).scalar_one_or_none()
    if binding is None:
        raise Conflict("channel has no active binding: the bot must be an admin that can post")
    try:
        render(markdown)
    except MessageTooLong as exc:
        raise Invalid(str(exc)) from exc
    except ValueError as exc:
        raise Invalid(f"message: {exc}") from exc
    post = Post(
        channel_id=channel.id,
        binding_id=binding.id,
        markdown=markdown,
        status=PostStatus.queued,
        random_id=secrets.randbits(64) - 2**63,  # Telegram's random_id is a signed long
        task_id=task_id,
    )
    session.add(post)
    await session.flush()
    return post


def post_link(channel: Channel, message_id: int | None) -> str | None:
    if message_id is None or channel.tg_id is None:
        return None
    if channel.username:
        return f"https://t.me/{channel.username}/{message_id}"
    return f"https://t.me/c/{channel.tg_id}/{message_id}"


def _result(post: Post, channel: Channel) -> TaskResult:
    if post.status == PostStatus.sent:
        return results.ok(
            {
                "post_id": post.id,
                "channel_id": channel.tg_id,
                "message_id": post.message_id,
                "link": post_link(channel, post.message_id),
            }
        )
    return results.fail(503, post.error or "post failed", post_id=post.id)


def _failed(post: Post, channel: Channel, status_code: int, error: str) -> TaskResult:
    post.status, post.error = PostStatus.failed, error
    return results.fail(status_code, error, post_id=post.id, channel_id=channel.tg_id)


async def send(
    session: AsyncSession, post_id: int, *, gateway: Gateway, cipher: Cipher
) -> TaskResult:
    """Send a queued post. Raises RetryLater; every other outcome is a result."""
    # The row lock makes a re-delivered copy of the task wait for the first one and
    # then find the post already sent.
    post = (
        await session.execute(select(Post).where(Post.id == post_id).with_for_update())
    ).scalar_one_or_none()
    if post is None:
        return results.fail(404, "post not found")
    channel = await session.get_one(Channel, post.channel_id)
    if post.status != PostStatus.queued:
        return _result(post, channel)
    binding = await session.get_one(Binding, post.binding_id)
    bot = await session.get_one(Bot, binding.bot_id)
    if bot.status != BotStatus.active:
        return _failed(post, channel, 409, f"bot is {bot.status.value}: {bot.status_reason}")
    if binding.status != BindingStatus.active:
        return _failed(post, channel, 409, f"binding is {binding.status.value}: {binding.reason}")
    rendered = render(post.markdown)
    ref = ChannelRef(
        tg_id=channel.tg_id, username=channel.username, access_hash=channel.access_hash
    )
    try:
        message_id: int | None = await gateway.send_message(
            bots.account(bot, cipher),
            ref,
            rendered.text,
            rendered.entities,
            random_id=post.random_id,
        )
    except AlreadyPosted:
        message_id = None  # sent by an earlier attempt whose answer was lost
    except FloodWait as exc:
        raise RetryLater(max(1, exc.seconds), exc.reason) from exc
    except TelegramUnavailable as exc:
        raise RetryLater(5, exc.reason) from exc
    except TokenInvalid as exc:
        await bots.invalidate(
            session, bot, status=BotStatus.invalid, reason=f"token rejected: {exc.reason}"
        )
        return _failed(post, channel, 503, f"bot token rejected by Telegram: {exc.reason}")
    except (NotAdmin, ChannelUnresolvable) as exc:
        binding.status, binding.reason = BindingStatus.invalid, exc.reason
        binding.last_checked_at = datetime.now(UTC)
        return _failed(post, channel, 503, f"bot cannot post in the channel: {exc.reason}")
    except MessageRejected as exc:
        return _failed(post, channel, 422, f"Telegram refused the message: {exc.reason}")
    post.status, post.message_id, post.sent_at = PostStatus.sent, message_id, datetime.now(UTC)
    post.error = None
    return _result(post, channel)


async def give_up(session: AsyncSession, post_id: int, reason: str) -> TaskResult:
    """After the last retry: the post failed."""
    return await fail_queued(session, post_id, f"gave up after retries: {reason}")


async def fail_queued(session: AsyncSession, post_id: int, error: str) -> TaskResult:
    """Fail a post that is still queued. A task for it that arrives later finds it failed
    and sends nothing, so a caller told "not scheduled" may safely post again."""
    post = await session.get(Post, post_id, with_for_update=True)
    if post is None:
        return results.fail(404, "post not found")
    channel = await session.get_one(Channel, post.channel_id)
    if post.status != PostStatus.queued:
        return _result(post, channel)
    return _failed(post, channel, 503, error)
