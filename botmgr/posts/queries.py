"""Reading posts: GET /messages/{post_id}, GET /messages (filtered, paged as the other
lists: one statement, the total as a window count, botmgr/pages.py) and a group's posts.

A post's time, for the ``from``/``to`` filters and the ``due`` order, is when it went out
(``sent_at``), else when it is due (``send_at``), else when it was asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import TypeAdapter
from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from botmgr.channels.links import BadReference, parse_channel_id
from botmgr.errors import Invalid, NotFound
from botmgr.models import Channel, Post, PostStatus
from botmgr.pages import TOTAL, fetch_page, page_rows, row_columns
from botmgr.posts.schemas import PostOut, PostPage

Order = Literal["newest", "due"]

_POST = (
    Post.id,
    Post.group_id,
    Post.status,
    Post.markdown,
    Post.message_id,
    Post.message_ids,
    Post.error,
    Post.send_at,
    Post.not_before,
    Post.sent_at,
    Post.silent,
    Post.disable_preview,
    Post.buttons,
    Post.delete_after,
    Post.media_ids,
    Post.pinned,
    Post.edited_at,
    Post.deleted_at,
    Post.task_id,
    Post.created_at,
    Post.updated_at,
)
_CHANNEL = (Channel.tg_id.label("channel_tg_id"), Channel.username.label("channel_username"))
WHEN = func.coalesce(Post.sent_at, Post.send_at, Post.created_at)


def link(tg_id: int | None, username: str | None, message_id: int | None) -> str | None:
    if message_id is None or tg_id is None:
        return None
    if username:
        return f"https://t.me/{username}/{message_id}"
    return f"https://t.me/c/{tg_id}/{message_id}"


def shape(values: Mapping[Any, Any], now: datetime | None = None) -> dict[str, Any]:
    """A post as the API shows it, from the values of _POST + _CHANNEL."""
    status = values["status"]
    status = status.value if isinstance(status, PostStatus) else str(status)
    due = values["not_before"]
    now = now or datetime.now(UTC)
    return {
        "post_id": values["id"],
        "channel_id": values["channel_tg_id"],
        "group_id": values["group_id"],
        "status": status,
        "scheduled": status == "queued" and due is not None and due > now,
        "message": values["markdown"],
        "message_id": values["message_id"],
        "message_ids": values["message_ids"] or [],
        "link": link(values["channel_tg_id"], values["channel_username"], values["message_id"]),
        "error": values["error"],
        "send_at": values["send_at"],
        "sent_at": values["sent_at"],
        "silent": values["silent"],
        "disable_preview": values["disable_preview"],
        "buttons": values["buttons"] or [],
        "delete_after": values["delete_after"],
        "media": values["media_ids"] or [],
        "pinned": values["pinned"],
        "edited_at": values["edited_at"],
        "deleted_at": values["deleted_at"],
        "task_id": values["task_id"],
        "created_at": values["created_at"],
        "updated_at": values["updated_at"],
    }


_ONE = TypeAdapter(PostOut)
_MANY = TypeAdapter(list[PostOut])


def describe(post: Post, channel: Channel) -> PostOut:
    """A loaded post (and its channel) as the API shows it."""
    values = {c.key: getattr(post, c.key) for c in _POST}
    values.update(channel_tg_id=channel.tg_id, channel_username=channel.username)
    return _ONE.validate_python(shape(values))


async def get(session: AsyncSession, post_id: int) -> PostOut:
    row = (
        await session.execute(
            select(Post, Channel)
            .join(Channel, Channel.id == Post.channel_id)
            .where(Post.id == post_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound("post not found")
    return describe(*row)


async def group(session: AsyncSession, group_id: str) -> list[PostOut]:
    """The posts of a fan-out, by id (the order of the channels given)."""
    rows = (
        await session.execute(
            select(Post, Channel)
            .join(Channel, Channel.id == Post.channel_id)
            .where(Post.group_id == group_id)
            .order_by(Post.id)
        )
    ).all()
    if not rows:
        raise NotFound("group not found")
    return [describe(post, channel) for post, channel in rows]


@dataclass(frozen=True, slots=True)
class PostFilter:
    """GET /messages' filters; every one given must hold."""

    channel_id: int | str | None = None  # Telegram id, bare or -100…
    status: Sequence[PostStatus] = ()
    group_id: str | None = None
    since: datetime | None = None  # the post's time ≥ since
    until: datetime | None = None  # the post's time < until
    order: Order = "newest"

    def where(self) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if self.channel_id is not None:
            try:
                tg_id = parse_channel_id(self.channel_id)
            except BadReference as exc:
                raise Invalid("channel_id must be a Telegram channel id (bare or -100…)") from exc
            clauses.append(Channel.tg_id == tg_id)
        if self.status:
            clauses.append(Post.status.in_(list(self.status)))
        if self.group_id is not None:
            clauses.append(Post.group_id == self.group_id)
        if self.since is not None:
            clauses.append(WHEN >= self.since)
        if self.until is not None:
            clauses.append(WHEN < self.until)
        if self.since and self.until and self.since >= self.until:
            raise Invalid("'from' must be before 'to'")
        return clauses


def _page(filters: PostFilter) -> tuple[Select[Any], Any]:
    base = (
        select(*_POST, *_CHANNEL)
        .join_from(Post, Channel, Channel.id == Post.channel_id)
        .where(*filters.where())
    )
    ordered = (
        base.order_by(WHEN.asc(), Post.id.asc())
        if filters.order == "due"
        else base.order_by(Post.id.desc())
    )
    rows = page_rows(ordered)
    when = func.coalesce(rows.c.sent_at, rows.c.send_at, rows.c.created_at)
    order = [when.asc(), rows.c.id.asc()] if filters.order == "due" else [rows.c.id.desc()]
    page = select(*row_columns(rows), rows.c[TOTAL]).order_by(*order)
    return page, base.subquery("counted")


async def table(
    db: AsyncConnection | AsyncSession, filters: PostFilter, *, limit: int, offset: int
) -> PostPage:
    page, counted = _page(filters)
    rows, total = await fetch_page(db, page, limit, offset, counted=counted)
    now = datetime.now(UTC)
    messages = _MANY.validate_python([shape(r._mapping, now) for r in rows])
    return PostPage(messages=messages, total=total, limit=limit, offset=offset)
