"""Uploading and sending media: upload.saveFilePart / saveBigFilePart,
messages.uploadMedia, messages.sendMedia (one photo, video or document with a caption)
and messages.sendMultiMedia (an album). File rules: tgemu.methods.files.

Albums (messages.sendMultiMedia): each item has its own random_id; one already used
→ 500 RANDOM_ID_DUPLICATE and nothing is posted (or, with the "original" behaviour,
the album answered again); the same random_id twice in one call → RANDOM_ID_INVALID
("A provided random ID is invalid"). More than 10 items → MULTI_MEDIA_TOO_LONG ("Too
many media files were included in the same album"; Bot API sendMediaGroup: "2-10
items"). "Documents and audio files can be only grouped in an album with messages of
the same type" (Bot API sendMediaGroup) → MEDIA_GROUPED_INVALID ("You tried to send
media of different types in an album"). The items share one ``grouped_id``. Assumption:
an album takes one message of the per-channel send budget (Telegram does not say).
"""

from __future__ import annotations

import secrets

from telethon.tl import functions, types

from tgemu.methods import files, markup, posting
from tgemu.methods.base import Call, method
from tgemu.rpc import RpcError
from tgemu.world.models import StoredFile

ALBUM_MAX = 10


@method(functions.upload.SaveFilePartRequest)
def save_file_part(call: Call, request: functions.upload.SaveFilePartRequest) -> bool:
    files.save_part(call, request.file_id, request.file_part, request.bytes, big=False)
    return True


@method(functions.upload.SaveBigFilePartRequest)
def save_big_file_part(call: Call, request: functions.upload.SaveBigFilePartRequest) -> bool:
    files.save_part(
        call,
        request.file_id,
        request.file_part,
        request.bytes,
        big=True,
        total=request.file_total_parts,
    )
    return True


@method(functions.messages.UploadMediaRequest)
def upload_media(
    call: Call, request: functions.messages.UploadMediaRequest
) -> types.TypeMessageMedia:
    """Upload without sending (what an album's items need first)."""
    posting.postable(call, request.peer)
    return files.render(call.world, call.me.id, files.resolve(call, request.media))


@method(functions.messages.SendMediaRequest)
def send_media(call: Call, request: functions.messages.SendMediaRequest) -> types.Updates:
    channel = posting.postable(call, request.peer)
    entities = posting.checked_text(request.message, request.entities, caption=True)
    buttons = markup.parse(request.reply_markup)
    originals = posting.sent_before(call, channel, [request.random_id])
    if originals:
        return posting.answer(call, channel, originals)
    stored = files.resolve(call, request.media)
    posting.check_rate(call, channel)
    msg = call.world.post(
        channel,
        sender_id=call.me.id,
        text=request.message,
        entities=entities,
        random_id=request.random_id,
        media_id=stored.id,
        reply_markup=buttons,
        silent=bool(request.silent),
    )
    return posting.answer(call, channel, [msg])


@method(functions.messages.SendMultiMediaRequest)
def send_multi_media(
    call: Call, request: functions.messages.SendMultiMediaRequest
) -> types.Updates:
    channel = posting.postable(call, request.peer)
    items = request.multi_media
    if not items:
        raise RpcError(400, "MEDIA_EMPTY")
    if len(items) > ALBUM_MAX:
        raise RpcError(400, "MULTI_MEDIA_TOO_LONG")
    random_ids = [item.random_id for item in items]
    if len(set(random_ids)) != len(random_ids):
        raise RpcError(400, "RANDOM_ID_INVALID")
    captions = [posting.checked_text(i.message, i.entities, caption=True) for i in items]
    originals = posting.sent_before(call, channel, random_ids)
    if originals:
        return posting.answer(call, channel, originals)
    stored = [files.resolve(call, item.media, uploaded=False) for item in items]
    _check_mix(stored)
    posting.check_rate(call, channel)
    grouped_id = secrets.randbits(62) + 1
    sent = [
        call.world.post(
            channel,
            sender_id=call.me.id,
            text=item.message,
            entities=entities,
            random_id=item.random_id,
            media_id=file.id,
            grouped_id=grouped_id,
            silent=bool(request.silent),
        )
        for item, entities, file in zip(items, captions, stored, strict=True)
    ]
    return posting.answer(call, channel, sent)


def _check_mix(stored: list[StoredFile]) -> None:
    kinds = {files.kind_of(s) for s in stored}
    if "document" in kinds and len(kinds) > 1:
        raise RpcError(400, "MEDIA_GROUPED_INVALID")
