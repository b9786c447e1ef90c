"""/media: files for posts, uploaded as multipart/form-data (posts/media.py checks and
keeps them). ``POST /media`` (field ``file``, optional ``kind``: photo | video |
document) → 201 ``{"media_id", "kind", "name", "mime", "size"}``; the id goes into
``media`` of POST /messages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, UploadFile

from botmgr.deps import SettingsDep, UnitDep
from botmgr.errors import RESPONSES
from botmgr.posts import media
from botmgr.posts.schemas import MediaOut
from botmgr.security import require_operator
from botmgr.telegram.rich import MediaKind

router = APIRouter(
    prefix="/media", tags=["media"], dependencies=[Depends(require_operator)], responses=RESPONSES
)
CHUNK = 1024 * 1024


async def _read(upload: UploadFile, limit: int) -> bytes:
    """The upload's bytes, reading at most one chunk past ``limit`` (then it is refused
    as too large without holding the rest)."""
    parts: list[bytes] = []
    size = 0
    while chunk := await upload.read(CHUNK):
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(parts)


@router.post("", status_code=201, responses={413: RESPONSES[422] | {"description": "too large"}})
async def upload_media(
    file: Annotated[UploadFile, File(description="the file: a photo, a video or a document")],
    unit: UnitDep,
    settings: SettingsDep,
    kind: Annotated[MediaKind | None, Form()] = None,
) -> MediaOut:
    data = await _read(file, settings.media_max_bytes)
    upload = media.Upload(name=file.filename or "", data=data, kind=kind)
    return await media.store(unit.session, upload, max_bytes=settings.media_max_bytes)


@router.get("/{media_id}")
async def get_media(media_id: Annotated[int, Path(ge=1, le=2**63 - 1)], unit: UnitDep) -> MediaOut:
    return await media.describe(unit.session, media_id)
