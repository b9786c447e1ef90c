"""Files for posts (POST /media): checked, sniffed and kept in PostgreSQL.

The bytes live in the ``media`` table (bytea), so every worker on every host reads the
same file with no shared volume; the server never fetches a URL (no SSRF). A file's type
is taken from its content (the ``filetype`` library reads the magic numbers), never from
the name or the Content-Type the client sent, and its kind decides how it is sent:

- ``photo``: JPEG, PNG or WebP up to 10 MB — Telegram's limit for photos from bots
  (Bot API sendPhoto: "The photo must be at most 10 MB in size");
- ``video``: MP4 (what Telegram clients stream), up to the service's cap;
- ``document``: anything else (or asked for), up to the service's cap.

The cap, ``BOTMGR_MEDIA_MAX_BYTES`` (50 MB by default: the Bot API's upload limit for
files, "50 MB max size for other files" — bots on MTProto may upload more, up to 2 GB),
bounds what one request makes the API hold and what each post's send reads back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

import filetype
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from botmgr.audit.service import record
from botmgr.errors import AppError, Invalid, NotFound
from botmgr.models import Media
from botmgr.posts.schemas import MediaOut
from botmgr.telegram.rich import MediaFile, MediaKind

PHOTO_MAX = 10 * 1024 * 1024
PHOTO_MIMES = ("image/jpeg", "image/png", "image/webp")
VIDEO_MIMES = ("video/mp4",)
KINDS: tuple[MediaKind, ...] = ("photo", "video", "document")
NAME_MAX = 255


class TooLarge(AppError):
    status_code = 413


@dataclass(frozen=True, slots=True)
class Upload:
    name: str
    data: bytes
    kind: MediaKind | None = None  # asked for; None: from the content


def sniff(data: bytes) -> str:
    """The MIME type the content says it is (application/octet-stream if unknown)."""
    kind = filetype.guess(data[:8192])
    return kind.mime if kind is not None else "application/octet-stream"


def classify(mime: str, size: int, asked: MediaKind | None) -> MediaKind:
    """How a file of ``mime`` and ``size`` is sent; Invalid when it cannot be that."""
    if asked == "document":
        return "document"
    if asked == "photo" or (asked is None and mime in PHOTO_MIMES):
        if mime not in PHOTO_MIMES:
            raise Invalid(f"a photo must be JPEG, PNG or WebP; this file is {mime}")
        if size > PHOTO_MAX:
            raise Invalid(
                f"photo is {size:,} bytes; Telegram takes photos up to {PHOTO_MAX:,} bytes "
                "(10 MB) from bots — upload it as a document instead"
            )
        return "photo"
    if asked == "video" or (asked is None and mime in VIDEO_MIMES):
        if mime not in VIDEO_MIMES:
            raise Invalid(f"a video must be MP4; this file is {mime}")
        return "video"
    return "document"


def clean_name(name: str | None, mime: str) -> str:
    """A file name safe to store and show (no path, no control characters)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if c.isprintable()).strip()[:NAME_MAX]
    if base:
        return base
    extension = filetype.get_type(mime=mime)
    return f"file.{extension.extension}" if extension is not None else "file"


async def store(session: AsyncSession, upload: Upload, *, max_bytes: int) -> MediaOut:
    """Check and keep one file; its id for ``media`` on POST /messages."""
    size = len(upload.data)
    if size == 0:
        raise Invalid("the file is empty")
    if size > max_bytes:
        raise TooLarge(f"file is {size:,} bytes; this service takes files up to {max_bytes:,}")
    mime = sniff(upload.data)
    kind = classify(mime, size, upload.kind)
    row = Media(
        kind=kind,
        name=clean_name(upload.name, mime),
        mime=mime,
        size=size,
        sha256=hashlib.sha256(upload.data).hexdigest(),
        data=upload.data,
    )
    session.add(row)
    await session.flush()
    details = {"kind": kind, "name": row.name, "mime": mime, "size": size, "sha256": row.sha256}
    record(session, "media.upload", object_type="media", object_id=row.id, details=details)
    return _out(row)


def _out(row: Media) -> MediaOut:
    return MediaOut(
        media_id=row.id,
        kind=cast(Literal["photo", "video", "document"], row.kind),
        name=row.name,
        mime=row.mime,
        size=row.size,
    )


async def describe(session: AsyncSession, media_id: int) -> MediaOut:
    row = await session.get(Media, media_id)
    if row is None:
        raise NotFound("media not found")
    return _out(row)


async def files(session: AsyncSession, media_ids: Sequence[int]) -> list[MediaFile]:
    """The files of a post, with their bytes, in the post's order (a send reads them)."""
    rows = {
        m.id: m
        for m in (
            await session.execute(
                select(Media).where(Media.id.in_(media_ids)).options(undefer(Media.data))
            )
        ).scalars()
    }
    missing = [i for i in media_ids if i not in rows]
    if missing:
        raise NotFound(f"media {missing[0]} of the post is gone")
    return [
        MediaFile(
            media_id=m.id,
            kind=cast(MediaKind, m.kind),
            name=m.name,
            mime=m.mime,
            data=m.data,
        )
        for m in (rows[i] for i in media_ids)
    ]
