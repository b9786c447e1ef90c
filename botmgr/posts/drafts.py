"""What a caller asks to post (a ``Draft``) and the checks that refuse it before any row
is written: the Markdown (or caption), the buttons, the media, the channels and their
bindings. Every refusal is a 4xx domain error saying what is wrong."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from telegramify_markdown import utf16_len

from botmgr.channels.links import BadReference, parse_channel_id
from botmgr.errors import Conflict, Invalid, NotFound
from botmgr.models import IN_SERVICE, Binding, Channel, Media
from botmgr.posts import options
from botmgr.posts.markdown import MessageTooLong, RenderedMessage
from botmgr.posts.renderer import render_bounded

ButtonRows = Sequence[Sequence[Mapping[str, str]]]


@dataclass(frozen=True, slots=True)
class Draft:
    """A post as asked for, for one channel or many (POST /messages, the console)."""

    markdown: str = ""  # the text, or a media post's caption ("" for none)
    send_at: datetime | None = None  # aware; None or past: now
    silent: bool = False
    disable_preview: bool = False
    buttons: ButtonRows | None = None
    delete_after: int | None = None  # seconds after sending
    media_ids: Sequence[int] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Target:
    """A channel to post in, and the binding (its bot) that posts there."""

    channel: Channel
    binding: Binding


async def check_text(markdown: str, *, media: bool) -> RenderedMessage | None:
    """The Markdown rendered as Telegram will get it (None: a media post without
    caption); Invalid when it cannot be sent. A caption is held to 1024 characters."""
    if media and not markdown.strip():
        return None
    try:
        rendered = await render_bounded(markdown)  # the body first: unsendable is 422
    except MessageTooLong as exc:
        raise Invalid(str(exc)) from exc
    except ValueError as exc:
        raise Invalid(f"message: {exc}") from exc
    if media and (length := utf16_len(rendered.text)) > options.CAPTION_MAX:
        raise Invalid(
            f"caption is {length} characters long after formatting; Telegram accepts "
            f"{options.CAPTION_MAX} under a photo, video or document"
        )
    return rendered


def check_send_at(send_at: datetime | None) -> datetime | None:
    """When the post is due: None for now (absent, or in the past)."""
    if send_at is None:
        return None
    if send_at.tzinfo is None:
        raise Invalid("send_at must carry a UTC offset (RFC 3339), e.g. 2026-12-01T09:00:00Z")
    return send_at if send_at > datetime.now(UTC) else None


async def check_media(session: AsyncSession, media_ids: Sequence[int]) -> list[Media]:
    """The media rows (without their bytes), in order; Invalid for an unknown id, a
    repeated one, or an album Telegram refuses to group."""
    if not media_ids:
        return []
    if len(media_ids) > options.ALBUM_MAX:
        raise Invalid(f"media: at most {options.ALBUM_MAX} items in an album")
    if len(set(media_ids)) != len(media_ids):
        raise Invalid("media: an item is listed twice")
    rows = {
        m.id: m
        for m in (await session.execute(select(Media).where(Media.id.in_(media_ids)))).scalars()
    }
    missing = [i for i in media_ids if i not in rows]
    if missing:
        raise Invalid(f"media: unknown media_id {missing[0]} (upload it with POST /media)")
    found = [rows[i] for i in media_ids]
    kinds = {m.kind for m in found}
    # messages.sendMultiMedia groups photos and videos together, documents only with
    # documents (Bot API sendMediaGroup: "Documents and audio files can be only grouped
    # in an album with messages of the same type").
    if len(found) > 1 and "document" in kinds and kinds != {"document"}:
        raise Invalid("media: an album groups photos and videos, or documents only")
    return found


def parse_channels(channel_ids: Sequence[int | str]) -> list[int]:
    """Bare Telegram ids, in order; Invalid for a malformed or repeated one."""
    parsed: list[int] = []
    for given in channel_ids:
        try:
            tg_id = parse_channel_id(given)
        except BadReference as exc:
            what = f"channel id {given!r}" if len(channel_ids) > 1 else "channel_id"
            raise Invalid(f"{what} must be a Telegram channel id (bare or -100…)") from exc
        if tg_id in parsed:
            raise Invalid(f"channel {given!r} is listed twice")
        parsed.append(tg_id)
    return parsed


async def targets(session: AsyncSession, tg_ids: Sequence[int]) -> list[Target]:
    """Each channel with the binding that posts there, in order: NotFound for an unknown
    channel, Conflict for one without a binding in service (all or nothing)."""
    channels = {
        c.tg_id: c
        for c in (await session.execute(select(Channel).where(Channel.tg_id.in_(tg_ids)))).scalars()
    }
    missing = [t for t in tg_ids if t not in channels]
    if missing:
        raise NotFound(
            f"channel {missing[0]} not found" if len(tg_ids) > 1 else "channel not found"
        )
    # A ``new`` binding is taken too: its rights are checked when the post is sent.
    bindings = {
        b.channel_id: b
        for b in (
            await session.execute(
                select(Binding).where(
                    Binding.channel_id.in_([c.id for c in channels.values()]),
                    Binding.status.in_(IN_SERVICE),
                )
            )
        ).scalars()
    }
    found: list[Target] = []
    for tg_id in tg_ids:
        channel = channels[tg_id]
        binding = bindings.get(channel.id)
        if binding is None:
            where = f"channel {tg_id} has" if len(tg_ids) > 1 else "channel has"
            raise Conflict(f"{where} no active binding: the bot must be an admin that can post")
        found.append(Target(channel, binding))
    return found
