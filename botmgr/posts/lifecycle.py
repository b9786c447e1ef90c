"""What a caller may do to a post after asking for it — one post, or every post of a
fan-out group — and what each does, by the post's state:

=============  ===============================  ==================================
               queued (not sent yet)            sent
=============  ===============================  ==================================
reschedule     new due time (``send_at``)       409: it is out
edit           the row changes in place         an EDIT_POST task (messages.editMessage)
delete         cancelled: it never goes out     a DELETE_POST task (channels.deleteMessages)
pin / unpin    409: nothing to pin yet          a PIN_POST task (messages.updatePinnedMessage)
=============  ===============================  ==================================

A failed, cancelled or deleted post refuses all of these with 409 (deleting a cancelled
or deleted post again is a success that does nothing). On a group, posts that refuse are
passed over and reported as they are; only a group where every post refuses is a 409.

Every change locks the post's row (``FOR UPDATE``), as the send task does: a cancel that
races the send either comes first (the task then finds the post cancelled and sends
nothing) or waits for it (and finds it sent: the cancel becomes a delete). A reschedule
writes the new due time in the row; the task published for the old time checks the row
when it runs and does nothing if it is early (service.NotDue), so a post never goes out
early or twice. The tasks take their work as arguments and are published after the
commit, routed to the post's bot like its send.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr import metrics
from botmgr.audit.service import record
from botmgr.errors import Conflict, Invalid, NotFound
from botmgr.models import Binding, Channel, Post, PostAction, PostStatus
from botmgr.posts import drafts, options
from botmgr.posts.service import enqueue_send
from botmgr.tasks.names import DELETE_POST, EDIT_POST, PIN_POST
from botmgr.uow import UnitOfWork

ButtonRows = Sequence[Sequence[Mapping[str, str]]]


@dataclass(frozen=True, slots=True)
class Change:
    """What happened to one post: ``task_id`` names the task that does it in Telegram
    (None: done in the database, or nothing to do)."""

    post: Post
    channel_id: int | None  # the channel's Telegram id
    task_id: str | None


@dataclass(frozen=True, slots=True)
class _Row:
    post: Post
    channel: Channel
    bot_id: int


async def _rows(session: AsyncSession, post_id: int | None, group_id: str | None) -> list[_Row]:
    """The post, or the group's posts (by id), locked; NotFound if there is none."""
    if (post_id is None) == (group_id is None):
        raise ValueError("name a post or a group")
    stmt = (
        select(Post, Channel, Binding.bot_id)
        .join(Channel, Channel.id == Post.channel_id)
        .join(Binding, Binding.id == Post.binding_id)
        .order_by(Post.id)
        .with_for_update(of=Post)
    )
    stmt = (
        stmt.where(Post.id == post_id)
        if post_id is not None
        else stmt.where(Post.group_id == group_id)
    )
    rows = [_Row(p, c, b) for p, c, b in (await session.execute(stmt)).all()]
    if not rows:
        raise NotFound("post not found" if post_id is not None else "group not found")
    return rows


def _settle(changes: list[Change | Conflict], single: bool) -> list[Change]:
    """A single post's refusal is raised; a group's refusals are reported as no-ops,
    unless every post refused."""
    refusals = [c for c in changes if isinstance(c, Conflict)]
    done = [c for c in changes if isinstance(c, Change)]
    if refusals and (single or not done):
        raise refusals[0]
    return done


def _task(unit: UnitOfWork, row: _Row, name: str, kwargs: dict[str, Any] | None = None) -> Change:
    task_id = unit.enqueue(name, row.post.id, kwargs=kwargs or {}, bot=row.bot_id)
    unit.session.add(PostAction(task_id=task_id, post_id=row.post.id, action=name.rsplit(".")[-1]))
    return Change(row.post, row.channel.tg_id, task_id)


def _noop(row: _Row) -> Change:
    return Change(row.post, row.channel.tg_id, None)


def _audit(unit: UnitOfWork, action: str, change: Change, **details: Any) -> Change:
    """The audit event of ``change`` (an operator's change to a post), in its unit."""
    post = change.post
    details = {"tg_id": change.channel_id, "group_id": post.group_id, **details}
    details["task_id"] = change.task_id
    record(unit.session, action, object_type="post", object_id=post.id, details=details)
    return change


def _reschedule(unit: UnitOfWork, row: _Row, send_at: datetime) -> Change:
    post = row.post
    due = drafts.check_send_at(send_at)
    now = datetime.now(UTC)
    post.send_at, post.not_before = send_at, due
    wait = (due - now).total_seconds() if due is not None else 0.0
    if wait <= unit.max_countdown:
        post.dispatched_at = now
        enqueue_send(unit, post, row.bot_id, countdown=wait)
        return Change(post, row.channel.tg_id, post.task_id)
    post.dispatched_at = None  # the reconciler publishes it when due
    return _noop(row)


async def change(
    unit: UnitOfWork,
    *,
    post_id: int | None = None,
    group_id: str | None = None,
    send_at: datetime | None = None,
    markdown: str | None = None,
    buttons: ButtonRows | None = None,
) -> list[Change]:
    """PATCH: reschedule (``send_at``) and/or edit (``markdown``, ``buttons``; ``[]``
    removes the buttons) a post or each post of a group."""
    rows = await _rows(unit.session, post_id, group_id)
    media = bool(rows[0].post.media_ids)
    if markdown is not None:
        await drafts.check_text(markdown, media=media)
    stored = options.buttons(buttons) if buttons is not None else None
    if stored and len(rows[0].post.media_ids) > 1:
        raise Invalid("buttons: Telegram shows no buttons under an album")
    # A new time alone is a reschedule; new text or buttons an edit (at any time).
    edits = {"message": markdown, "buttons": stored}
    asked = {k: v for k, v in {**edits, "send_at": send_at}.items() if v is not None}
    action = "post.edit" if any(v is not None for v in edits.values()) else "post.reschedule"
    changes: list[Change | Conflict] = []
    for row in rows:
        post = row.post
        if post.status == PostStatus.queued:
            if markdown is not None:
                post.markdown = markdown
            if stored is not None:
                post.buttons = stored
            done = _reschedule(unit, row, send_at) if send_at else _noop(row)
            changes.append(_audit(unit, action, done, **asked))
        elif post.status == PostStatus.sent and send_at is not None:
            changes.append(Conflict(f"post {post.id} is already sent: send_at cannot change"))
        elif post.status == PostStatus.sent:
            kwargs = {"markdown": markdown, "buttons": stored}
            changes.append(_audit(unit, action, _task(unit, row, EDIT_POST, kwargs), **asked))
        else:
            changes.append(Conflict(f"post {post.id} is {post.status.value}: nothing to change"))
    return _settle(changes, post_id is not None)


async def remove(
    unit: UnitOfWork, *, post_id: int | None = None, group_id: str | None = None
) -> list[Change]:
    """DELETE: cancel a post not sent yet, delete a sent one from its channel."""
    rows = await _rows(unit.session, post_id, group_id)
    changes: list[Change | Conflict] = []
    for row in rows:
        post = row.post
        if post.status == PostStatus.queued:
            post.status = PostStatus.cancelled
            post.error = "cancelled by the operator"
            metrics.post_status(post, "cancelled")
            changes.append(_audit(unit, "post.cancel", _noop(row)))
        elif post.status == PostStatus.sent:
            changes.append(_audit(unit, "post.delete", _task(unit, row, DELETE_POST)))
        elif post.status in (PostStatus.cancelled, PostStatus.deleted):
            changes.append(_noop(row))
        else:
            changes.append(Conflict(f"post {post.id} failed: it is not in the channel"))
    return _settle(changes, post_id is not None)


async def pin(
    unit: UnitOfWork,
    *,
    post_id: int | None = None,
    group_id: str | None = None,
    unpin: bool = False,
    silent: bool = True,
) -> list[Change]:
    """POST/DELETE …/pin: pin (``silent``: without notifying) or unpin a sent post."""
    rows = await _rows(unit.session, post_id, group_id)
    changes: list[Change | Conflict] = []
    for row in rows:
        if row.post.status == PostStatus.sent:
            done = _task(unit, row, PIN_POST, {"unpin": unpin, "silent": silent})
            action = "post.unpin" if unpin else "post.pin"
            changes.append(_audit(unit, action, done, **({} if unpin else {"silent": silent})))
        else:
            status = row.post.status.value
            changes.append(Conflict(f"post {row.post.id} is {status}: only a sent post is pinned"))
    return _settle(changes, post_id is not None)
