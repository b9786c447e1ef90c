"""Posting Markdown into a channel, exactly once.

``create`` records the Post (``queued``, a random ``random_id``) in the caller's unit of
work and collects its send job, which the unit publishes after the commit. The task
sends with that same ``random_id`` on every attempt, so a retried or re-delivered task
cannot post twice: Telegram answers RANDOM_ID_DUPLICATE, which the gateway raises as
AlreadyPosted and which is recorded as sent (message id unknown).

States: ``queued`` → ``sent`` | ``failed``; a finished post never changes again, so a
task that arrives late (re-delivered, or published after the post was failed) answers
what happened and sends nothing.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.bots import service as bots
from botmgr.channels import failover, rights
from botmgr.channels.links import BadReference, channel_ref, parse_channel_id
from botmgr.channels.schemas import deep_link
from botmgr.errors import Conflict, Invalid, NotFound
from botmgr.models import (
    IN_SERVICE,
    Binding,
    BindingStatus,
    Bot,
    BotStatus,
    Channel,
    InvalidCause,
    Post,
    PostStatus,
)
from botmgr.outcomes import Refused, RetryAfterCommit, Status
from botmgr.posts.markdown import MessageTooLong
from botmgr.posts.renderer import render_accepted, render_bounded
from botmgr.security import Cipher, bot_account
from botmgr.tasks.names import SEND_POST
from botmgr.telegram.gateway import (
    AlreadyPosted,
    ChannelUnresolvable,
    Gateway,
    MessageRejected,
    NotAdmin,
    TelegramUnavailable,
    TokenInvalid,
)
from botmgr.uow import UnitOfWork

NOT_SCHEDULED = "not scheduled: task queue unavailable"


@dataclass(frozen=True, slots=True)
class PostSent:
    post_id: int
    channel_id: int | None
    message_id: int | None  # None: an earlier attempt sent it and its answer was lost
    link: str | None
    status = Status.ok

    def body(self) -> dict[str, Any]:
        return {
            "post_id": self.post_id,
            "channel_id": self.channel_id,
            "message_id": self.message_id,
            "link": self.link,
        }


PostOutcome = PostSent | Refused | RetryAfterCommit


async def create(unit: UnitOfWork, *, channel_id: int | str, markdown: str) -> Post:
    """Validate and record a post in ``unit``; its send job goes out after the commit."""
    session = unit.session
    try:
        tg_id = parse_channel_id(channel_id)
    except BadReference as exc:
        raise Invalid("channel_id must be a Telegram channel id (bare or -100…)") from exc
    try:
        await render_bounded(markdown)  # the body first: unsendable is 422, bound or not
    except MessageTooLong as exc:
        raise Invalid(str(exc)) from exc
    except ValueError as exc:
        raise Invalid(f"message: {exc}") from exc
    channel = (
        await session.execute(select(Channel).where(Channel.tg_id == tg_id))
    ).scalar_one_or_none()
    if channel is None:
        raise NotFound("channel not found")
    # A ``new`` binding is taken too: its rights are checked when the post is sent.
    binding = (
        await session.execute(
            select(Binding).where(Binding.channel_id == channel.id, Binding.status.in_(IN_SERVICE))
        )
    ).scalar_one_or_none()
    if binding is None:
        raise Conflict("channel has no active binding: the bot must be an admin that can post")
    post = Post(
        channel_id=channel.id,
        binding_id=binding.id,
        markdown=markdown,
        status=PostStatus.queued,
        random_id=secrets.randbits(64) - 2**63,  # Telegram's random_id is a signed long
        task_id=str(uuid.uuid4()),
    )
    session.add(post)
    await session.flush()
    post_id = post.id

    async def not_scheduled(session: AsyncSession) -> None:
        await fail_queued(session, post_id, NOT_SCHEDULED)

    unit.enqueue(
        SEND_POST, post_id, task_id=post.task_id, on_refused=not_scheduled, bot=binding.bot_id
    )
    return post


def post_link(channel: Channel, message_id: int | None) -> str | None:
    if message_id is None or channel.tg_id is None:
        return None
    if channel.username:
        return f"https://t.me/{channel.username}/{message_id}"
    return f"https://t.me/c/{channel.tg_id}/{message_id}"


def outcome(post: Post, channel: Channel) -> PostOutcome:
    """The answer of a finished post (sent, or failed with its error)."""
    if post.status == PostStatus.sent:
        return PostSent(
            post.id, channel.tg_id, post.message_id, post_link(channel, post.message_id)
        )
    return Refused(Status.unavailable, post.error or "post failed", {"post_id": post.id})


def _failed(post: Post, channel: Channel, status: Status, error: str) -> Refused:
    post.status, post.error = PostStatus.failed, error
    return Refused(status, error, {"post_id": post.id, "channel_id": channel.tg_id})


# Built once: its cache key is computed once too, not for every post sent.
_SEND_ROWS = (
    select(Post, Channel, Binding, Bot)
    .join(Channel, Channel.id == Post.channel_id)
    .join(Binding, Binding.id == Post.binding_id)
    .join(Bot, Bot.id == Binding.bot_id)
    .where(Post.id == bindparam("post_id"))
    .with_for_update(of=Post)
)


async def send(
    session: AsyncSession, post_id: int, *, gateway: Gateway, cipher: Cipher
) -> PostOutcome:
    """Send a queued post. FloodWait and TelegramUnavailable go up (the task retries:
    nothing is recorded); every other answer is an outcome to commit."""
    # One round trip for the four rows (bench/posting.py: the three loads that followed
    # the post's were a quarter of the worker's database time). The row lock, on the
    # post alone, makes a re-delivered copy of the task wait for the first one and then
    # find the post already sent.
    row = (await session.execute(_SEND_ROWS, {"post_id": post_id})).one_or_none()
    if row is None:
        raise NotFound("post not found")
    post, channel, binding, bot = row
    if post.status != PostStatus.queued:
        return outcome(post, channel)
    if bot.status != BotStatus.active:
        return _failed(post, channel, Status.conflict, f"bot is {bot.status}: {bot.status_reason}")
    if binding.status == BindingStatus.new:
        refused = await _check_new(session, post, channel, binding, bot, gateway, cipher)
        if refused is not None:
            return refused
    if binding.status != BindingStatus.active:
        return _failed(
            post, channel, Status.conflict, f"binding is {binding.status}: {binding.reason}"
        )
    try:
        rendered = await render_accepted(post.markdown)
    except ValueError as exc:  # limits lowered since it was accepted, or over the budget
        return _failed(post, channel, Status.invalid, f"message: {exc}")
    # Unavailable (no render process free) goes up: the task retries it like an outage.
    message_id: int | None = None
    for _attempt in range(FAILOVER_ATTEMPTS):
        if post.uncertain_bot_id is not None and post.uncertain_bot_id != bot.id:
            return _failed(post, channel, Status.conflict, _uncertain(post, bot))
        try:
            message_id = await gateway.send_message(
                bot_account(bot, cipher),
                channel_ref(channel),
                rendered.text,
                rendered.entities,
                random_id=post.random_id,
            )
        except AlreadyPosted:
            message_id = None  # sent by an earlier attempt whose answer was lost
        except TelegramUnavailable as exc:
            # The outcome is unknown: only this bot may try again (its random_id
            # dedupes), so a failover never sends it twice. Recorded, then retried.
            post.uncertain_bot_id = bot.id
            return RetryAfterCommit(exc)
        except TokenInvalid as exc:
            await bots.token_rejected(session, bot.id, exc.reason)
            return _failed(
                post, channel, Status.unavailable, f"bot token rejected by Telegram: {exc.reason}"
            )
        except NotAdmin as exc:
            # A definite refusal: the post never reached the channel, so the bot the
            # binding fails over to sends it (same random_id), exactly once.
            moved = await _moved(session, binding, bot, channel, exc.reason, gateway, cipher)
            if moved is None:
                return _failed(
                    post,
                    channel,
                    Status.unavailable,
                    f"bot cannot post in the channel: {binding.reason}",
                )
            bot = moved
            continue
        except ChannelUnresolvable as exc:
            binding.status, binding.reason = BindingStatus.invalid, exc.reason
            binding.cause = InvalidCause.channel.value
            binding.last_checked_at = datetime.now(UTC)
            return _failed(
                post, channel, Status.unavailable, f"bot cannot post in the channel: {exc.reason}"
            )
        except MessageRejected as exc:
            return _failed(
                post, channel, Status.invalid, f"Telegram refused the message: {exc.reason}"
            )
        break
    else:
        return _failed(post, channel, Status.unavailable, "bot cannot post in the channel")
    post.status, post.message_id, post.sent_at = PostStatus.sent, message_id, datetime.now(UTC)
    post.error = None
    return outcome(post, channel)


async def _check_new(
    session: AsyncSession,
    post: Post,
    channel: Channel,
    binding: Binding,
    bot: Bot,
    gateway: Gateway,
    cipher: Cipher,
) -> Refused | None:
    """A post to a ``new`` binding: ask Telegram about the bot's rights now (one paced
    ``getParticipant``, the rule of ``rights.apply_rights``). Rights present: the binding
    is ``active`` and the post goes on (None). Still missing: the post fails with 409 —
    the channel's state refuses it until its owner acts, resending would not help — with
    the reason and the deep link that grants the rights."""
    checked = await rights.check_binding(session, binding.id, gateway=gateway, cipher=cipher)
    if isinstance(checked, Refused):  # the token was refused, or the channel is taken
        return _failed(post, channel, checked.status, checked.message)
    if binding.status == BindingStatus.active:
        return None
    refused = _failed(
        post, channel, Status.conflict, f"the bot cannot post in the channel: {binding.reason}"
    )
    refused.details.update(reason=binding.reason, deep_link=deep_link(bot.username))
    return refused


FAILOVER_ATTEMPTS = 3


def _uncertain(post: Post, bot: Bot) -> str:
    return (
        f"not re-sent through bot {bot.id} after failover: an attempt through bot "
        f"{post.uncertain_bot_id} had an unknown outcome and may have reached the channel"
    )


async def _moved(
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


async def fail_queued(session: AsyncSession, post_id: int, error: str) -> PostOutcome:
    """Fail a post that is still queued (the queue refused it, or its task gave up). A
    task for it that arrives later finds it failed and sends nothing, so a caller told
    "not scheduled" may safely post again."""
    post = await session.get(Post, post_id, with_for_update=True)
    if post is None:
        raise NotFound("post not found")
    channel = await session.get_one(Channel, post.channel_id)
    if post.status != PostStatus.queued:
        return outcome(post, channel)
    return _failed(post, channel, Status.unavailable, error)
