"""Files for the Telethon gateway: uploading a ``MediaFile`` and reusing that upload.

A file goes to Telegram once per bot: the first send uploads it (upload.saveFilePart, or
saveBigFilePart past 10 MB — Telethon's ``upload_file`` picks the part size and method
by core.telegram.org/api/files) and keeps the InputMedia that Telegram's answer names
(photo or document id, access hash, file reference); later sends of the same
``media_id`` by that bot — a fan-out to its other channels, a retry — pass that instead.

Per process and per bot is enough: a bot is served by one worker process at a time
(botmgr/fleet), access hashes are per account, and a process that never saw the file
simply uploads it again. A file reference expires (core.telegram.org/api/file_reference);
Telegram then answers FILE_REFERENCE_EXPIRED and the gateway uploads afresh.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from telethon import TelegramClient, types

from botmgr.telegram.rich import MediaFile
from botmgr.telegram.tl import Who

#: Kept uploads (a few hundred bytes each); the least recently used go first.
CACHE_MAX = 10_000


class MediaCache:
    def __init__(self, max_entries: int = CACHE_MAX) -> None:
        self._media: OrderedDict[tuple[Who, int], types.TypeInputMedia] = OrderedDict()
        self._max = max_entries

    def get(self, bot: Who, media_id: int) -> types.TypeInputMedia | None:
        found = self._media.get((bot, media_id))
        if found is not None:
            self._media.move_to_end((bot, media_id))
        return found

    def put(self, bot: Who, media_id: int, media: types.TypeInputMedia | None) -> None:
        if media is None:
            return
        self._media[(bot, media_id)] = media
        self._media.move_to_end((bot, media_id))
        while len(self._media) > self._max:
            self._media.popitem(last=False)

    def forget(self, bot: Who, media_ids: Iterable[int]) -> bool:
        """Drop these uploads (Telegram no longer takes them); whether any was kept."""
        return any([self._media.pop((bot, m), None) is not None for m in media_ids])


async def upload(client: TelegramClient, file: MediaFile) -> types.TypeInputMedia:
    """Upload ``file`` and say how to send it: a photo (Telegram re-encodes it), a video
    (streamable) or a document sent as a file."""
    uploaded = await client.upload_file(file.data, file_name=file.name)
    if file.kind == "photo":
        return types.InputMediaUploadedPhoto(uploaded)
    attributes: list[types.TypeDocumentAttribute] = [types.DocumentAttributeFilename(file.name)]
    if file.kind == "video":
        # Duration and size unknown here: Telegram reads them from the file.
        attributes.insert(0, types.DocumentAttributeVideo(0, 0, 0, supports_streaming=True))
    return types.InputMediaUploadedDocument(
        uploaded,
        mime_type=file.mime,
        attributes=attributes,
        force_file=file.kind == "document" or None,
    )


def reusable(media: object) -> types.TypeInputMedia | None:
    """The InputMedia that sends this MessageMedia (from a send's or uploadMedia's
    answer) again without uploading: id, access hash and file reference."""
    if isinstance(media, types.MessageMediaPhoto) and isinstance(media.photo, types.Photo):
        photo = media.photo
        return types.InputMediaPhoto(
            types.InputPhoto(photo.id, photo.access_hash, photo.file_reference)
        )
    if isinstance(media, types.MessageMediaDocument) and isinstance(media.document, types.Document):
        doc = media.document
        return types.InputMediaDocument(
            types.InputDocument(doc.id, doc.access_hash, doc.file_reference)
        )
    return None
