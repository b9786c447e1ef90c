"""Uploads and media as Telegram checks them: file parts, InputFile → a stored photo or
document, InputMedia → what a message carries, and the MessageMedia a client reads back.

Rules (core.telegram.org/api/files unless said otherwise):
- A part is at most 512 KB (FILE_PART_TOO_BIG) and not empty (FILE_PART_EMPTY); all parts
  have one size with ``part_size % 1024 == 0`` and ``524288 % part_size == 0``, only the
  last may be smaller (FILE_PART_SIZE_INVALID; a size that changes between parts:
  FILE_PART_SIZE_CHANGED); part numbers run 0 … upload_max_fileparts_default − 1 = 3999
  (FILE_PART_INVALID); saveBigFilePart's ``file_total_parts`` is 1 … 4000 and the same in
  every call (FILE_PARTS_INVALID). "Use upload.saveBigFilePart in case the full size of
  the file is more than 10 MB": a file over 10 MB put together from saveFilePart parts is
  refused with FILE_PARTS_INVALID (an assumption: which error Telegram gives is not said).
- InputFile: ``parts`` must be the number of parts uploaded (FILE_PARTS_INVALID), part k
  missing → FILE_PART_k_MISSING, a wrong non-empty md5_checksum → MD5_CHECKSUM_INVALID.
- Photos (Bot API sendPhoto: "The photo must be at most 10 MB in size. The photo's width
  and height must not exceed 10000 in total. Width and height ratio must be at most
  20"): larger → PHOTO_SAVE_FILE_INVALID (Telethon's errors.csv: "may be that it
  exceeds 10MB"), not an image → IMAGE_PROCESS_FAILED, dimensions → PHOTO_INVALID_DIMENSIONS.
- Reusing a file (inputMediaPhoto / inputMediaDocument): an unknown id or another
  account's access hash → MEDIA_EMPTY ("The provided media object is invalid"), an empty
  file reference → FILE_REFERENCE_EMPTY, an old one → FILE_REFERENCE_EXPIRED
  (core.telegram.org/api/file_reference); a photo id given as a document (or the
  reverse) → MEDIA_INVALID.
"""

from __future__ import annotations

import hashlib
import io

import imagesize
from telethon.tl import types

from tgemu.methods.base import Call
from tgemu.rpc import RpcError
from tgemu.world import World
from tgemu.world.files import Upload
from tgemu.world.models import StoredFile

PART_MAX = 512 * 1024
MAX_PARTS = 4000  # appConfig upload_max_fileparts_default
SMALL_FILE_MAX = 10 * 1024 * 1024
PHOTO_MAX = 10 * 1024 * 1024
PHOTO_SIDES_MAX = 10_000
PHOTO_RATIO_MAX = 20
DC_ID = 2


# ----------------------------------------------------------------- parts
def save_part(
    call: Call, file_id: int, part: int, data: bytes, *, big: bool, total: int | None = None
) -> None:
    if big and (total is None or not 1 <= total <= MAX_PARTS):
        raise RpcError(400, "FILE_PARTS_INVALID")
    if not 0 <= part < (total if big and total else MAX_PARTS):
        raise RpcError(400, "FILE_PART_INVALID")
    if not data:
        raise RpcError(400, "FILE_PART_EMPTY")
    if len(data) > PART_MAX:
        raise RpcError(400, "FILE_PART_TOO_BIG")
    uploads = call.world.uploads
    me = call.me.id
    upload = uploads.get(me, file_id, big) or uploads.start(me, file_id, big, total)
    if big and upload.total != total:
        raise RpcError(400, "FILE_PARTS_INVALID")
    sizes = {len(p) for i, p in upload.parts.items() if i != part}
    if _conforming(len(data)) and any(_conforming(s) and s != len(data) for s in sizes):
        raise RpcError(400, "FILE_PART_SIZE_CHANGED")
    if big and part != (total or 0) - 1 and not _conforming(len(data)):
        raise RpcError(400, "FILE_PART_SIZE_INVALID")
    upload.parts[part] = data


def _conforming(size: int) -> bool:
    return size % 1024 == 0 and PART_MAX % size == 0


def assemble(call: Call, file: types.TypeInputFile) -> bytes:
    """The bytes of an uploaded InputFile; its parts are used up."""
    big = isinstance(file, types.InputFileBig)
    if not isinstance(file, types.InputFile | types.InputFileBig):
        raise RpcError(400, "MEDIA_INVALID")
    upload = call.world.uploads.get(call.me.id, file.id, big)
    if upload is None:
        raise RpcError(400, "FILE_PART_0_MISSING")
    if not 1 <= file.parts <= MAX_PARTS or (big and file.parts != upload.total):
        raise RpcError(400, "FILE_PARTS_INVALID")
    missing = next((i for i in range(file.parts) if i not in upload.parts), None)
    if missing is not None:
        raise RpcError(400, f"FILE_PART_{missing}_MISSING")
    if max(upload.parts) >= file.parts:
        raise RpcError(400, "FILE_PARTS_INVALID")
    _check_sizes(upload, file.parts)
    data = upload.data()
    if not big:
        if len(data) > SMALL_FILE_MAX:
            raise RpcError(400, "FILE_PARTS_INVALID")
        checksum = file.md5_checksum
        if checksum and checksum.lower() != hashlib.md5(data).hexdigest():
            raise RpcError(400, "MD5_CHECKSUM_INVALID")
    return data


def _check_sizes(upload: Upload, parts: int) -> None:
    if parts == 1:
        return
    size = len(upload.parts[0])
    for i in range(parts):
        length = len(upload.parts[i])
        last = i == parts - 1
        if (not last and (length != size or not _conforming(length))) or length > size:
            raise RpcError(400, "FILE_PART_SIZE_INVALID")


# ----------------------------------------------------------------- media
def resolve(call: Call, media: types.TypeInputMedia, *, uploaded: bool = True) -> StoredFile:
    """The stored file an InputMedia names, made from its upload when new (the parts stay
    usable until they expire). ``uploaded``: whether inputMediaUploaded* is allowed
    here — messages.sendMultiMedia takes only media already uploaded with
    messages.uploadMedia (its method page; Telethon's ``_send_album`` does so first)."""
    if isinstance(media, types.InputMediaUploadedPhoto | types.InputMediaUploadedDocument):
        if not uploaded:
            raise RpcError(400, "MEDIA_INVALID")
        data = assemble(call, media.file)
        if isinstance(media, types.InputMediaUploadedPhoto):
            return _photo(call, data, media.file.name)
        return _document(call, data, media)
    if isinstance(media, types.InputMediaPhoto | types.InputMediaDocument):
        return _existing(call, media)
    if isinstance(media, types.InputMediaEmpty):
        raise RpcError(400, "MEDIA_EMPTY")
    raise RpcError(400, "MEDIA_INVALID")  # geo, polls, dice …: not modelled


def _photo(call: Call, data: bytes, name: str) -> StoredFile:
    if len(data) > PHOTO_MAX:
        raise RpcError(400, "PHOTO_SAVE_FILE_INVALID")
    try:
        w, h = imagesize.get(io.BytesIO(data))
    except Exception:  # a truncated or odd header
        w, h = -1, -1
    if w <= 0 or h <= 0:
        raise RpcError(400, "IMAGE_PROCESS_FAILED")
    if w + h > PHOTO_SIDES_MAX or max(w, h) > PHOTO_RATIO_MAX * min(w, h):
        raise RpcError(400, "PHOTO_INVALID_DIMENSIONS")
    # Telegram re-encodes photos as JPEG.
    return call.world.store_file(
        kind="photo",
        size=len(data),
        mime="image/jpeg",
        name=name or None,
        w=w,
        h=h,
        owner_id=call.me.id,
    )


def _document(call: Call, data: bytes, media: types.InputMediaUploadedDocument) -> StoredFile:
    attributes = media.attributes or []
    name = next(
        (a.file_name for a in attributes if isinstance(a, types.DocumentAttributeFilename)),
        media.file.name or None,
    )
    video = next((a for a in attributes if isinstance(a, types.DocumentAttributeVideo)), None)
    return call.world.store_file(
        kind="document",
        size=len(data),
        mime=media.mime_type or "application/octet-stream",
        name=name,
        w=video.w if video else None,
        h=video.h if video else None,
        video=video is not None and not media.force_file,
        attributes=[a.to_dict() for a in attributes],
        owner_id=call.me.id,
    )


def _existing(call: Call, media: types.InputMediaPhoto | types.InputMediaDocument) -> StoredFile:
    ref = media.id
    if not isinstance(ref, types.InputPhoto | types.InputDocument):
        raise RpcError(400, "MEDIA_EMPTY")
    stored = call.world.find_file(ref.id)
    if stored is None or ref.access_hash != call.world.access_hash(call.me.id, stored.id):
        raise RpcError(400, "MEDIA_EMPTY")
    wanted = "photo" if isinstance(media, types.InputMediaPhoto) else "document"
    if stored.kind != wanted:
        raise RpcError(400, "MEDIA_INVALID")
    if not ref.file_reference:
        raise RpcError(400, "FILE_REFERENCE_EMPTY")
    if ref.file_reference.hex() != stored.file_reference:
        raise RpcError(400, "FILE_REFERENCE_EXPIRED")
    return stored


def kind_of(stored: StoredFile) -> str:
    """What the control API calls it: photo, video or document."""
    if stored.kind == "photo":
        return "photo"
    return "video" if stored.video else "document"


# ----------------------------------------------------------------- rendering
def render(world: World, viewer_id: int, stored: StoredFile) -> types.TypeMessageMedia:
    access_hash = world.access_hash(viewer_id, stored.id)
    reference = bytes.fromhex(stored.file_reference)
    if stored.kind == "photo":
        return types.MessageMediaPhoto(
            photo=types.Photo(
                id=stored.id,
                access_hash=access_hash,
                file_reference=reference,
                date=stored.date,
                sizes=[types.PhotoSize("y", stored.w or 0, stored.h or 0, stored.size)],
                dc_id=DC_ID,
            )
        )
    attributes = [a for a in map(_attribute, stored.attributes) if a is not None]
    return types.MessageMediaDocument(
        video=stored.video or None,
        document=types.Document(
            id=stored.id,
            access_hash=access_hash,
            file_reference=reference,
            date=stored.date,
            mime_type=stored.mime,
            size=stored.size,
            dc_id=DC_ID,
            attributes=attributes,
        ),
    )


def _attribute(data: dict) -> types.TypeDocumentAttribute | None:
    cls = getattr(types, data.get("_", ""), None)
    if cls is None or not data["_"].startswith("DocumentAttribute"):
        return None
    return cls(**{k: v for k, v in data.items() if k != "_"})
