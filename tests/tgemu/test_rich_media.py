"""Uploads, photos, documents and albums against a real tgemu process, over real MTProto
with a raw Telethon client: upload.saveFilePart / saveBigFilePart, messages.uploadMedia,
messages.sendMedia and messages.sendMultiMedia, with Telegram's rules and errors."""

from __future__ import annotations

import hashlib
import random

import pytest
from telethon import TelegramClient, errors
from telethon.tl import functions, types

from tests.harness.images import png
from tests.harness.tgemu import TgEmu
from tests.tgemu.helpers import bot_client, new_bot

pytestmark = pytest.mark.timeout(60)

Save = functions.upload.SaveFilePartRequest
SaveBig = functions.upload.SaveBigFilePartRequest
KB = 1024


def rid() -> int:
    return random.getrandbits(63)


async def admin_channel(tgemu: TgEmu, client: TelegramClient, bot: dict, **rights: bool):
    made = tgemu.create_channel("Media", tgemu.unique("media"))
    tgemu.grant_admin(made["id"], bot["id"], **(rights or {"post_messages": True}))
    return made, await client.get_entity(made["bot_api_id"])


async def send_photo(client: TelegramClient, channel, data: bytes, caption: str = "", **kw):
    uploaded = await client.upload_file(data, file_name="p.png")
    media = types.InputMediaUploadedPhoto(uploaded)
    return await client(
        functions.messages.SendMediaRequest(channel, media, caption, random_id=rid(), **kw)
    )


def new_message(answer: types.Updates) -> types.Message:
    return next(u.message for u in answer.updates if isinstance(u, types.UpdateNewChannelMessage))


async def test_photo_with_caption_and_buttons_then_reuse(tgemu: TgEmu) -> None:
    bot = new_bot(tgemu)
    async with bot_client(tgemu, bot["token"]) as client:
        made, channel = await admin_channel(tgemu, client, bot)
        button = types.KeyboardInlineButton(
            "Site", types.InlineButtonTypeUrl("https://example.org/")
        )
        buttons = types.ReplyInlineMarkup([types.KeyboardInlineButtonRow([button])])
        before = tgemu.metrics()["calls"].get("upload.saveFilePart", 0)
        bold = [types.MessageEntityBold(0, 7)]
        answer = await send_photo(
            client,
            channel,
            png(640, 480),
            "**cap**",
            silent=True,
            reply_markup=buttons,
            entities=bold,
        )
        sent = new_message(answer)
        assert isinstance(sent.media, types.MessageMediaPhoto) and sent.message == "**cap**"
        assert sent.silent and bytes(sent.reply_markup) == bytes(buttons)
        uploads = tgemu.metrics()["calls"]["upload.saveFilePart"] - before
        assert uploads == 1  # a small file: one part
        stored = next(m for m in tgemu.messages(made["id"]) if m["id"] == sent.id)
        assert stored["media"]["kind"] == "photo"
        assert (stored["media"]["w"], stored["media"]["h"]) == (640, 480)
        assert stored["silent"] and stored["reply_markup"] == [
            [{"text": "Site", "url": "https://example.org/"}]
        ]

        # The same photo again, by id + access hash + file reference: no upload.
        photo = sent.media.photo
        again = types.InputMediaPhoto(
            types.InputPhoto(photo.id, photo.access_hash, photo.file_reference)
        )
        second = new_message(
            await client(functions.messages.SendMediaRequest(channel, again, "", random_id=rid()))
        )
        assert second.media.photo.id == photo.id
        assert tgemu.metrics()["calls"]["upload.saveFilePart"] - before == 1

        # Another bot cannot use this bot's access hash; an expired reference is refused.
        other = new_bot(tgemu)
        async with bot_client(tgemu, other["token"]) as other_client:
            tgemu.grant_admin(made["id"], other["id"])
            theirs = await other_client.get_entity(made["bot_api_id"])
            with pytest.raises(errors.MediaEmptyError):
                await other_client(
                    functions.messages.SendMediaRequest(theirs, again, "", random_id=rid())
                )
        assert tgemu.expire_file_references() >= 1
        with pytest.raises(errors.FileReferenceExpiredError):
            await client(functions.messages.SendMediaRequest(channel, again, "", random_id=rid()))
        empty_ref = types.InputMediaPhoto(types.InputPhoto(photo.id, photo.access_hash, b""))
        with pytest.raises(errors.FileReferenceEmptyError):
            await client(
                functions.messages.SendMediaRequest(channel, empty_ref, "", random_id=rid())
            )


async def test_photo_refusals(tgemu: TgEmu) -> None:
    bot = new_bot(tgemu)
    async with bot_client(tgemu, bot["token"]) as client:
        _, channel = await admin_channel(tgemu, client, bot)
        with pytest.raises(errors.MediaCaptionTooLongError):
            await send_photo(client, channel, png(10, 10), "x" * 1025)
        with pytest.raises(errors.ImageProcessFailedError):
            await send_photo(client, channel, b"not an image at all")
        with pytest.raises(errors.PhotoInvalidDimensionsError):
            await send_photo(client, channel, png(630, 30))  # ratio 21 > 20
        with pytest.raises(errors.PhotoInvalidDimensionsError):
            await send_photo(client, channel, png(5001, 5000))  # sides 10001 > 10000
        with pytest.raises(errors.MediaEmptyError):
            await client(
                functions.messages.SendMediaRequest(
                    channel, types.InputMediaEmpty(), "", random_id=rid()
                )
            )
        await send_photo(client, channel, png(600, 30), "x" * 1024)  # at the limits: fine


async def test_document_video_and_big_file_parts(tgemu: TgEmu) -> None:
    bot = new_bot(tgemu)
    async with bot_client(tgemu, bot["token"]) as client:
        made, channel = await admin_channel(tgemu, client, bot)
        data = bytes(range(256)) * 4 * 300  # 300 KB in three parts of 128 KB
        file_id = rid()
        for part in range(3):
            chunk = data[part * 128 * KB : (part + 1) * 128 * KB]
            assert await client(SaveBig(file_id, part, 3, chunk)) is True
        media = types.InputMediaUploadedDocument(
            types.InputFileBig(file_id, 3, "clip.mp4"),
            "video/mp4",
            [
                types.DocumentAttributeVideo(12.5, 320, 240),
                types.DocumentAttributeFilename("clip.mp4"),
            ],
        )
        sent = new_message(
            await client(functions.messages.SendMediaRequest(channel, media, "", random_id=rid()))
        )
        assert isinstance(sent.media, types.MessageMediaDocument) and sent.media.video
        stored = next(m for m in tgemu.messages(made["id"]) if m["id"] == sent.id)["media"]
        assert (stored["kind"], stored["size"], stored["mime"], stored["name"]) == (
            "video",
            len(data),
            "video/mp4",
            "clip.mp4",
        )


async def test_file_part_rules(tgemu: TgEmu) -> None:
    bot = new_bot(tgemu)
    async with bot_client(tgemu, bot["token"]) as client:
        _, channel = await admin_channel(tgemu, client, bot)
        with pytest.raises(errors.FilePartEmptyError):
            await client(Save(rid(), 0, b""))
        with pytest.raises(errors.FilePartTooBigError):
            await client(Save(rid(), 0, b"x" * (512 * KB + 1)))
        with pytest.raises(errors.FilePartInvalidError):
            await client(Save(rid(), 4000, b"x" * KB))
        with pytest.raises(errors.FilePartsInvalidError):
            await client(SaveBig(rid(), 0, 4001, b"x" * KB))
        changing = rid()
        await client(Save(changing, 0, b"x" * 64 * KB))
        with pytest.raises(errors.FilePartSizeChangedError):
            await client(Save(changing, 1, b"x" * 32 * KB))
        big = rid()
        with pytest.raises(errors.FilePartSizeInvalidError):
            await client(SaveBig(big, 0, 2, b"x" * 1000))  # not the last part: 1 KB multiples

        def send(file: types.TypeInputFile):
            media = types.InputMediaUploadedDocument(file, "text/plain", [])
            return client(functions.messages.SendMediaRequest(channel, media, "", random_id=rid()))

        gappy = rid()
        await client(Save(gappy, 0, b"a" * KB))
        await client(Save(gappy, 2, b"c" * 10))
        with pytest.raises(errors.FilePartMissingError) as missing:
            await send(types.InputFile(gappy, 3, "t.txt", ""))
        assert missing.value.which == 1
        with pytest.raises(errors.FilePart0MissingError):
            await send(types.InputFile(rid(), 1, "t.txt", ""))
        whole = rid()
        await client(Save(whole, 0, b"hello"))
        with pytest.raises(errors.Md5ChecksumInvalidError):
            await send(types.InputFile(whole, 1, "t.txt", "0" * 32))
        with pytest.raises(errors.FilePartsInvalidError):
            await send(types.InputFile(whole, 0, "t.txt", ""))
        ok = await send(types.InputFile(whole, 1, "t.txt", hashlib.md5(b"hello").hexdigest()))
        assert new_message(ok).media.document.size == 5


async def uploaded_photos(client: TelegramClient, channel, count: int) -> list:
    """Photos uploaded with messages.uploadMedia, as an album's items must be."""
    media = []
    for i in range(count):
        uploaded = await client.upload_file(png(100 + i, 100), file_name=f"{i}.png")
        answer = await client(
            functions.messages.UploadMediaRequest(channel, types.InputMediaUploadedPhoto(uploaded))
        )
        photo = answer.photo
        media.append(
            types.InputMediaPhoto(
                types.InputPhoto(photo.id, photo.access_hash, photo.file_reference)
            )
        )
    return media


async def test_album_once_per_random_ids(tgemu: TgEmu) -> None:
    bot = new_bot(tgemu)
    async with bot_client(tgemu, bot["token"]) as client:
        made, channel = await admin_channel(tgemu, client, bot)
        media = await uploaded_photos(client, channel, 3)
        ids = [rid() for _ in media]
        items = [
            types.InputSingleMedia(m, "album caption" if i == 0 else "", random_id=r)
            for i, (m, r) in enumerate(zip(media, ids, strict=True))
        ]
        answer = await client(functions.messages.SendMultiMediaRequest(channel, items))
        sent = {u.random_id: u.id for u in answer.updates if isinstance(u, types.UpdateMessageID)}
        assert set(sent) == set(ids)
        stored = tgemu.messages(made["id"])
        assert len(stored) == 3 and stored[0]["text"] == "album caption"
        groups = {m["media"]["grouped_id"] for m in stored}
        assert len(groups) == 1 and None not in groups
        assert [m["random_id"] for m in stored] == ids

        with pytest.raises(errors.RandomIdDuplicateError):  # a retry posts nothing
            await client(functions.messages.SendMultiMediaRequest(channel, items))
        fresh = [types.InputSingleMedia(m, "", random_id=rid()) for m in media[:2]]
        fresh[1].random_id = ids[2]  # one item already sent: the album is refused whole
        with pytest.raises(errors.RandomIdDuplicateError):
            await client(functions.messages.SendMultiMediaRequest(channel, fresh))
        assert len(tgemu.messages(made["id"])) == 3

        tgemu.config(random_id_duplicate="original")
        try:
            again = await client(functions.messages.SendMultiMediaRequest(channel, items))
        finally:
            tgemu.config(random_id_duplicate="error")
        assert {
            u.random_id: u.id for u in again.updates if isinstance(u, types.UpdateMessageID)
        } == sent
        assert len(tgemu.messages(made["id"])) == 3


async def test_album_refusals(tgemu: TgEmu) -> None:
    bot = new_bot(tgemu)
    async with bot_client(tgemu, bot["token"]) as client:
        _, channel = await admin_channel(tgemu, client, bot)
        photos = await uploaded_photos(client, channel, 2)

        def album(media: list, random_ids: list[int] | None = None):
            ids = random_ids or [rid() for _ in media]
            items = [
                types.InputSingleMedia(m, "", random_id=r) for m, r in zip(media, ids, strict=True)
            ]
            return client(functions.messages.SendMultiMediaRequest(channel, items))

        with pytest.raises(errors.MultiMediaTooLongError):
            await album(photos * 6)
        same = rid()
        with pytest.raises(errors.RandomIdInvalidError):
            await album(photos, [same, same])
        uploaded = types.InputMediaUploadedPhoto(await client.upload_file(png(50, 50)))
        with pytest.raises(errors.MediaInvalidError):  # not uploaded with uploadMedia first
            await album([photos[0], uploaded])
        doc_file = await client.upload_file(b"plain text", file_name="a.txt")
        doc = await client(
            functions.messages.UploadMediaRequest(
                channel, types.InputMediaUploadedDocument(doc_file, "text/plain", [])
            )
        )
        document = types.InputMediaDocument(
            types.InputDocument(
                doc.document.id, doc.document.access_hash, doc.document.file_reference
            )
        )
        with pytest.raises(errors.MediaGroupedInvalidError):
            await album([photos[0], document])
        with pytest.raises(errors.MediaInvalidError):  # a document's id sent as a photo
            await album([photos[0], types.InputMediaPhoto(document.id)])
