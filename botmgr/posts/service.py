"""Posting Markdown (with options and media) into channels, exactly once.

``submit`` records one Post per channel (``queued``, random ``random_id``s) in the
caller's unit of work and collects their send jobs, which the unit publishes after the
commit — or, for a post due later than a short countdown (``send_at``), none: the
reconciler publishes it when due (posts/dispatch.py). The task sends with the same
``random_id`` (an album: the same one per item) on every attempt, so a retried or
re-delivered task cannot post twice: Telegram answers RANDOM_ID_DUPLICATE, which the
gateway raises as AlreadyPosted and which is recorded as sent (message id unknown). A
task that comes before the post's due time (a copy for a time the post was moved from)
does nothing (``NotDue``).

States: ``queued`` → ``sent`` | ``failed`` | ``cancelled``; ``sent`` → ``deleted``
(posts/lifecycle.py). A finished send never changes again, so a task that arrives late
(re-delivered, or published after the post was failed or cancelled) answers what
happened and sends nothing.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr import metrics
from botmgr.audit.service import record
from botmgr.bots import service as bots
from botmgr.channels import rights
from botmgr.channels.links import channel_ref
from botmgr.channels.schemas import deep_link
from botmgr.errors import Invalid, NotFound
from botmgr.models import (
    Binding,
    BindingStatus,
    Bot,
    BotStatus,
    Channel,
    InvalidCause,
    Post,
    PostStatus,
)
from botmgr.monitoring import logs
from botmgr.outcomes import Refused, RetryAfterCommit, Status
from botmgr.posts import drafts, media, options, queries, sending
from botmgr.posts.drafts import Draft
from botmgr.posts.markdown import RenderedMessage
from botmgr.posts.renderer import render_accepted
from botmgr.security import Cipher, bot_account
from botmgr.tasks.names import DELETE_POST, SEND_POST
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
from botmgr.webhooks import events
from botmgr.webhooks.events import Event

__all__ = ["Draft"]

CANCELLED = "the post was cancelled before it was sent"
NOT_SCHEDULED = "not scheduled: task queue unavailable"
#: A send task that arrives this much before its post's due time still sends it (the
#: clocks of the API and worker hosts may differ a little); earlier, it is a stale copy
#: (the post was rescheduled later) and does nothing.
EARLY = 0.5


@dataclass(frozen=True, slots=True)
class PostSent:
    post_id: int
    channel_id: int | None
    message_id: int | None  # None: an earlier attempt sent it and its answer was lost
    link: str | None
    message_ids: tuple[int, ...] = ()  # an album's messages, in item order
    # Sent by this very call (not an answer about an earlier send): what comes after a
    # send (the delete_after job) is arranged once.
    fresh: bool = field(default=False, compare=False)
    status = Status.ok

    def body(self) -> dict[str, Any]:
        return {
            "post_id": self.post_id,
            "channel_id": self.channel_id,
            "message_id": self.message_id,
            "link": self.link,
            "message_ids": list(self.message_ids),
        }


@dataclass(frozen=True, slots=True)
class NotDue:
    """A send task that came before its post is due: a copy published for an earlier
    time (the post was rescheduled). It does nothing and records no result; the task
    published for the new time (or the reconciler) sends the post."""

    post_id: int
    due: datetime
    status = Status.ok

    def body(self) -> dict[str, Any]:
        return {"post_id": self.post_id, "message": f"not due before {self.due.isoformat()}"}


PostOutcome = PostSent | Refused | RetryAfterCommit


@dataclass(frozen=True, slots=True)
class Created:
    """The posts of one POST /messages, in the order of the channels given; ``group_id``
    when it was a fan-out (``channel_ids``)."""

    posts: list[Post]
    group_id: str | None
    channel_ids: list[int | None]  # each post's channel, Telegram id


def new_random_id() -> int:
    return secrets.randbits(64) - 2**63  # Telegram's random_id is a signed long


async def submit(
    unit: UnitOfWork,
    *,
    channel_ids: Sequence[int | str],
    draft: Draft,
    fan_out: bool = False,
) -> Created:
    """Validate ``draft`` and record one post per channel in ``unit``, all or none; each
    send job goes out after the commit, routed to its own bot (which paces it). A post
    due later than a short countdown gets no job now: the reconciler publishes it when
    it is due (posts/dispatch.py). ``fan_out``: the posts share a new group id."""
    session = unit.session
    tg_ids = drafts.parse_channels(channel_ids)
    media = await drafts.check_media(session, draft.media_ids)
    await drafts.check_text(draft.markdown, media=bool(media))
    buttons = options.buttons(draft.buttons)
    if buttons and len(media) > 1:
        raise Invalid("buttons: Telegram shows no buttons under an album")
    due = drafts.check_send_at(draft.send_at)
    found = await drafts.targets(session, tg_ids)
    group_id = str(uuid.uuid4()) if fan_out else None
    now = datetime.now(UTC)
    wait = (due - now).total_seconds() if due is not None else 0.0
    by_countdown = wait <= unit.max_countdown
    created: list[Post] = []
    for target in found:
        item_ids = [new_random_id() for _ in media] if len(media) > 1 else []
        post = Post(
            channel_id=target.channel.id,
            binding_id=target.binding.id,
            markdown=draft.markdown,
            status=PostStatus.queued,
            random_id=item_ids[0] if item_ids else new_random_id(),
            item_random_ids=item_ids,
            task_id=str(uuid.uuid4()),
            group_id=group_id,
            send_at=draft.send_at,
            not_before=due,
            dispatched_at=now,
            silent=draft.silent,
            disable_preview=draft.disable_preview,
            buttons=buttons,
            delete_after=draft.delete_after,
            media_ids=[m.id for m in media],
        )
        session.add(post)
        created.append(post)
    await session.flush()
    for post, target in zip(created, found, strict=True):
        details: dict[str, Any] = {"tg_id": target.channel.tg_id, "group_id": group_id}
        details |= {"send_at": draft.send_at}
        details |= {"message": draft.markdown, "media_ids": post.media_ids, "task_id": post.task_id}
        record(session, "post.create", object_type="post", object_id=post.id, details=details)
    if by_countdown:
        for post, target in zip(created, found, strict=True):
            enqueue_send(unit, post, target.binding.bot_id, countdown=wait)
    else:  # no task out (a None at INSERT would take the column's server default)
        await session.execute(
            update(Post)
            .where(Post.id.in_([p.id for p in created]))
            .values(dispatched_at=None)
            .execution_options(synchronize_session="fetch")
        )
    return Created(created, group_id, [t.channel.tg_id for t in found])


def enqueue_send(unit: UnitOfWork, post: Post, bot_id: int, *, countdown: float = 0.0) -> None:
    """Collect ``post``'s send job (its own task id) in ``unit``, for ``bot_id``'s owner."""
    post_id = post.id

    async def not_scheduled(session: AsyncSession) -> None:
        await fail_queued(session, post_id, NOT_SCHEDULED)

    unit.enqueue(
        SEND_POST,
        post_id,
        task_id=post.task_id,
        countdown=countdown if countdown > 0 else None,
        on_refused=not_scheduled,
        bot=bot_id,
    )


async def create(unit: UnitOfWork, *, channel_id: int | str, markdown: str) -> Post:
    """Validate and record a text post in ``unit``; its send job goes out after the
    commit (the original POST /messages)."""
    created = await submit(unit, channel_ids=[channel_id], draft=Draft(markdown=markdown))
    return created.posts[0]


def post_link(channel: Channel, message_id: int | None) -> str | None:
    return queries.link(channel.tg_id, channel.username, message_id)


def outcome(post: Post, channel: Channel) -> PostOutcome:
    """The answer of a finished post (sent — deleted since or not —, cancelled, or
    failed with its error)."""
    if post.status in (PostStatus.sent, PostStatus.deleted):
        return PostSent(
            post.id,
            channel.tg_id,
            post.message_id,
            post_link(channel, post.message_id),
            tuple(post.message_ids or ()),
        )
    if post.status == PostStatus.cancelled:
        return Refused(Status.conflict, CANCELLED, {"post_id": post.id})
    return Refused(Status.unavailable, post.error or "post failed", {"post_id": post.id})


async def _failed(
    session: AsyncSession, post: Post, channel: Channel, status: Status, error: str
) -> Refused:
    """The post is failed (every path to ``failed`` comes here): post.failed goes out."""
    post.status, post.error = PostStatus.failed, error
    await events.post_event(session, Event.post_failed, post, channel)
    metrics.post_status(post, "failed")
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
) -> PostOutcome | NotDue:
    """Send a queued post that is due. FloodWait and TelegramUnavailable go up (the task
    retries: nothing is recorded); every other answer is an outcome to commit."""
    # One round trip for the four rows (bench/posting.py: the three loads that followed
    # the post's were a quarter of the worker's database time). The row lock, on the
    # post alone, makes a re-delivered copy of the task wait for the first one and then
    # find the post already sent.
    row = (await session.execute(_SEND_ROWS, {"post_id": post_id})).one_or_none()
    if row is None:
        raise NotFound("post not found")
    post, channel, binding, bot = row
    logs.bind(bot_id=bot.id, channel_id=channel.tg_id)
    if post.status != PostStatus.queued:
        return outcome(post, channel)
    # Checked at run time: a task published for a time the post no longer has (it was
    # rescheduled later) must not send it early; the row, not the task, says when.
    if post.not_before is not None and post.not_before > datetime.now(UTC) + timedelta(
        seconds=EARLY
    ):
        return NotDue(post.id, post.not_before)
    if bot.status != BotStatus.active:
        return await _failed(
            session, post, channel, Status.conflict, f"bot is {bot.status}: {bot.status_reason}"
        )
    if binding.status == BindingStatus.new:
        refused = await _check_new(session, post, channel, binding, bot, gateway, cipher)
        if refused is not None:
            return refused
    if binding.status != BindingStatus.active:
        return await _failed(
            session,
            post,
            channel,
            Status.conflict,
            f"binding is {binding.status}: {binding.reason}",
        )
    try:
        # A media post may have no caption at all.
        rendered = (
            await render_accepted(post.markdown)
            if post.markdown.strip() or not post.media_ids
            else RenderedMessage("", [])
        )
    except ValueError as exc:  # limits lowered since it was accepted, or over the budget
        return await _failed(session, post, channel, Status.invalid, f"message: {exc}")
    # Unavailable (no render process free) goes up: the task retries it like an outage.
    try:
        files = await media.files(session, post.media_ids) if post.media_ids else []
    except NotFound as exc:
        return await _failed(session, post, channel, Status.invalid, exc.message)
    message_ids: list[int] = []
    for _attempt in range(sending.FAILOVER_ATTEMPTS):
        if post.uncertain_bot_id is not None and post.uncertain_bot_id != bot.id:
            return await _failed(
                session, post, channel, Status.conflict, sending.uncertain(post, bot)
            )
        try:
            message_ids = await sending.deliver_once(
                gateway, bot_account(bot, cipher), channel_ref(channel), post, rendered, files
            )
        except AlreadyPosted:
            message_ids = []  # sent by an earlier attempt whose answer was lost
        except TelegramUnavailable as exc:
            # The outcome is unknown: only this bot may try again (its random_id
            # dedupes), so a failover never sends it twice. Recorded, then retried.
            post.uncertain_bot_id = bot.id
            return RetryAfterCommit(exc)
        except TokenInvalid as exc:
            await bots.token_rejected(session, bot.id, exc.reason)
            return await _failed(
                session,
                post,
                channel,
                Status.unavailable,
                f"bot token rejected by Telegram: {exc.reason}",
            )
        except NotAdmin as exc:
            # A definite refusal: the post never reached the channel, so the bot the
            # binding fails over to sends it (same random_id), exactly once.
            moved = await sending.moved(session, binding, bot, channel, exc.reason, gateway, cipher)
            if moved is None:
                return await _failed(
                    session,
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
            await events.binding_event(session, Event.binding_invalid, [binding.id])
            return await _failed(
                session,
                post,
                channel,
                Status.unavailable,
                f"bot cannot post in the channel: {exc.reason}",
            )
        except MessageRejected as exc:
            return await _failed(
                session,
                post,
                channel,
                Status.invalid,
                f"Telegram refused the message: {exc.reason}",
            )
        break
    else:
        return await _failed(
            session, post, channel, Status.unavailable, "bot cannot post in the channel"
        )
    post.status, post.sent_at = PostStatus.sent, datetime.now(UTC)
    metrics.post_status(post, "sent")
    post.message_id, post.message_ids = (message_ids[0] if message_ids else None), message_ids
    post.error = None
    await events.post_event(session, Event.post_sent, post, channel)
    sent = outcome(post, channel)
    return replace(sent, fresh=True) if isinstance(sent, PostSent) else sent


async def deliver(
    unit: UnitOfWork, post_id: int, *, gateway: Gateway, cipher: Cipher
) -> PostOutcome | NotDue:
    """``send`` as the send task runs it: a post sent now with ``delete_after`` gets its
    delete job (a countdown, or a DeferredJob row when later than that)."""
    sent = await send(unit.session, post_id, gateway=gateway, cipher=cipher)
    if isinstance(sent, PostSent) and sent.fresh:
        post = await unit.session.get_one(Post, post_id)
        if post.delete_after:
            binding = await unit.session.get_one(Binding, post.binding_id)
            unit.enqueue(
                DELETE_POST,
                post_id,
                kwargs={"auto": True},
                countdown=float(post.delete_after),
                bot=binding.bot_id,
            )
    return sent


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
        return await _failed(session, post, channel, checked.status, checked.message)
    if binding.status == BindingStatus.active:
        return None
    refused = await _failed(
        session,
        post,
        channel,
        Status.conflict,
        f"the bot cannot post in the channel: {binding.reason}",
    )
    refused.details.update(reason=binding.reason, deep_link=deep_link(bot.username))
    return refused


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
    return await _failed(session, post, channel, Status.unavailable, error)
