"""The posting half of the Telethon gateway (mixed into TelethonGateway): messages with
their options (silent, no preview, URL buttons), media and albums, and what a bot does
to a post after publishing it — edit, delete, pin.

Decisions worth knowing:
- Every call is paced like a send: a slot in the bot's and the channel's budget
  (clients.Pacer), keyed by the album's first random_id or by (change, message) so a
  task retried after a PacedWait finds its own slot. An upload's parts are not paced
  (they are not messages; Telegram publishes no limit for them) but a call that uploads
  gets more time: ``call_timeout`` plus a second per UPLOAD_RATE bytes.
- Files are uploaded once per bot (media.MediaCache); an album's items go through
  messages.uploadMedia first, as messages.sendMultiMedia wants. A kept upload Telegram
  no longer takes (FILE_REFERENCE_EXPIRED …) is dropped and the send made once more with
  fresh uploads — nothing was posted by the refused call, so the random_ids still hold.
- An album is one sendMultiMedia with a random_id per item: sent again (a retry after a
  crash) it is refused whole with RANDOM_ID_DUPLICATE → AlreadyPosted, or answered with
  the original messages (their ids are returned).
- An album cannot carry buttons (sendMultiMedia has no reply_markup): MediaRejected
  before any call.
- editMessage without reply_markup removes the buttons (Telegram's behaviour), so an
  edit that keeps them (``buttons=None``) re-sends the post's current ones, read with
  channels.getMessages. MESSAGE_NOT_MODIFIED and, for pins, CHAT_NOT_MODIFIED are
  successes; deleting ids already gone is too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from telethon import errors, functions, types

from botmgr.telegram.clients import PooledClient
from botmgr.telegram.gateway import (
    BotAccount,
    ChannelRef,
    Entity,
    MessageRejected,
    TelegramError,
    TelegramUnavailable,
)
from botmgr.telegram.media import MediaCache, reusable, upload
from botmgr.telegram.rich import (
    ALBUM_MAX,
    NO_OPTIONS,
    Buttons,
    MediaFile,
    MediaRejected,
    MessageGone,
    PostOptions,
)
from botmgr.telegram.tl import (
    sent_message_id,
    sent_message_ids,
    sent_messages,
    to_markup,
    to_telethon,
    who,
)

T = TypeVar("T")

#: Bytes a second an upload is given at least (the call's deadline grows with the file).
UPLOAD_RATE = 256 * 1024
#: channels.deleteMessages takes at most 100 ids a call.
DELETE_BATCH = 100
#: Refusals of a kept upload: upload again (core.telegram.org/api/file_reference).
_STALE_UPLOAD = (
    errors.FileReferenceExpiredError,
    errors.FileReferenceInvalidError,
    errors.FileReferenceEmptyError,
    errors.MediaEmptyError,
)


def _slot(*parts: object) -> int:
    """A stable pacing key for a change (not a random_id, but as unique)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


class RichPosts:
    _media: MediaCache
    _timeout: float

    # ---- TelethonGateway's own ------------------------------------------------------
    async def _call(
        self,
        bot: BotAccount,
        op: Callable[[PooledClient], Awaitable[T]],
        *,
        fallback: type[TelegramError],
        paced: bool = True,
        deadline: float | None = None,
    ) -> T:
        raise NotImplementedError

    async def _on_channel(
        self,
        p: PooledClient,
        bot: BotAccount,
        ref: ChannelRef,
        fn: Callable[[types.InputChannel], Awaitable[T]],
    ) -> T:
        raise NotImplementedError

    async def _pace_send(self, bot: BotAccount, channel: ChannelRef, key: int) -> None:
        raise NotImplementedError

    # ---- posting ----------------------------------------------------------------------
    async def send_message(
        self,
        bot: BotAccount,
        channel: ChannelRef,
        text: str,
        entities: list[Entity],
        *,
        random_id: int,
        options: PostOptions | None = None,
    ) -> int:
        opts = options or NO_OPTIONS
        tl_entities = to_telethon(entities)
        await self._pace_send(bot, channel, random_id)

        async def op(p: PooledClient) -> int:
            return await self._on_channel(p, bot, channel, lambda c: send(p, c))

        async def send(p: PooledClient, input_channel: types.InputChannel) -> int:
            peer = types.InputPeerChannel(input_channel.channel_id, input_channel.access_hash)
            # The raw request: random_id must be ours so a retry is recognised.
            answer = await p.client(
                functions.messages.SendMessageRequest(
                    peer=peer,
                    message=text,
                    random_id=random_id,
                    entities=tl_entities or None,
                    no_webpage=opts.no_preview or None,
                    silent=opts.silent or None,
                    reply_markup=to_markup(opts.buttons),
                )
            )
            message_id = sent_message_id(answer, random_id)
            if message_id is None:
                raise TelegramUnavailable("Telegram did not say which message it created")
            return message_id

        return await self._call(bot, op, fallback=MessageRejected, paced=False)

    async def send_media(
        self,
        bot: BotAccount,
        channel: ChannelRef,
        media: Sequence[MediaFile],
        caption: str,
        entities: list[Entity],
        *,
        random_ids: Sequence[int],
        options: PostOptions | None = None,
    ) -> list[int]:
        files, ids, opts = list(media), list(random_ids), options or NO_OPTIONS
        if not 1 <= len(files) <= ALBUM_MAX:
            raise MediaRejected(f"a post carries one file or an album of 2–{ALBUM_MAX}")
        if len(ids) != len(files):
            raise ValueError("one random_id per file")
        if len(files) > 1 and opts.buttons:
            raise MediaRejected("an album cannot carry buttons (sendMultiMedia has no markup)")
        tl_entities = to_telethon(entities)
        await self._pace_send(bot, channel, ids[0])

        async def op(p: PooledClient) -> list[int]:
            return await self._on_channel(p, bot, channel, lambda c: send(p, c))

        async def send(p: PooledClient, c: types.InputChannel) -> list[int]:
            peer = types.InputPeerChannel(c.channel_id, c.access_hash)
            try:
                return await self._send_files(p, bot, peer, files, caption, tl_entities, ids, opts)
            except _STALE_UPLOAD:
                if not self._media.forget(who(bot), [f.media_id for f in files]):
                    raise  # a fresh upload refused: that is the file, not the cache
            return await self._send_files(p, bot, peer, files, caption, tl_entities, ids, opts)

        size = sum(len(f.data) for f in files)
        deadline = self._timeout + size / UPLOAD_RATE
        return await self._call(bot, op, fallback=MediaRejected, paced=False, deadline=deadline)

    async def _send_files(
        self,
        p: PooledClient,
        bot: BotAccount,
        peer: types.InputPeerChannel,
        files: list[MediaFile],
        caption: str,
        entities: list[types.TypeMessageEntity],
        ids: list[int],
        opts: PostOptions,
    ) -> list[int]:
        if len(files) == 1:
            file = files[0]
            kept = self._media.get(who(bot), file.media_id)
            answer = await p.client(
                functions.messages.SendMediaRequest(
                    peer=peer,
                    media=kept or await upload(p.client, file),
                    message=caption,
                    random_id=ids[0],
                    entities=entities or None,
                    reply_markup=to_markup(opts.buttons),
                    silent=opts.silent or None,
                )
            )
            for message in sent_messages(answer):
                self._media.put(who(bot), file.media_id, reusable(message.media))
            message_id = sent_message_id(answer, ids[0])
            found = None if message_id is None else [message_id]
        else:
            items = [
                types.InputSingleMedia(
                    await self._album_item(p, bot, peer, file),
                    caption if i == 0 else "",
                    random_id=ids[i],
                    entities=(entities or None) if i == 0 else None,
                )
                for i, file in enumerate(files)
            ]
            answer = await p.client(
                functions.messages.SendMultiMediaRequest(
                    peer=peer, multi_media=items, silent=opts.silent or None
                )
            )
            found = sent_message_ids(answer, ids)
        if found is None:
            raise TelegramUnavailable("Telegram did not say which messages it created")
        return found

    async def _album_item(
        self, p: PooledClient, bot: BotAccount, peer: types.InputPeerChannel, file: MediaFile
    ) -> types.TypeInputMedia:
        """An album item's media: kept, or uploaded now with messages.uploadMedia."""
        kept = self._media.get(who(bot), file.media_id)
        if kept is not None:
            return kept
        answer = await p.client(
            functions.messages.UploadMediaRequest(peer=peer, media=await upload(p.client, file))
        )
        media = reusable(answer)
        if media is None:
            raise TelegramUnavailable("Telegram did not say where the uploaded file is")
        self._media.put(who(bot), file.media_id, media)
        return media

    # ---- changes after publishing ---------------------------------------------------
    async def edit_message(
        self,
        bot: BotAccount,
        channel: ChannelRef,
        message_id: int,
        text: str | None,
        entities: list[Entity],
        *,
        buttons: Buttons | None = None,
        no_preview: bool = False,
    ) -> None:
        if text is None and buttons is None:
            return  # nothing to change
        tl_entities = to_telethon(entities) if text is not None else []
        await self._pace_send(bot, channel, _slot("edit", channel, message_id, text, buttons))

        async def op(p: PooledClient) -> None:
            await self._on_channel(p, bot, channel, lambda c: edit(p, c))

        async def edit(p: PooledClient, c: types.InputChannel) -> None:
            if buttons is None:  # keep them: Telegram drops what an edit does not repeat
                markup = await _current_markup(p, c, message_id)
            else:
                markup = to_markup(buttons)
            try:
                await p.client(
                    functions.messages.EditMessageRequest(
                        peer=types.InputPeerChannel(c.channel_id, c.access_hash),
                        id=message_id,
                        message=text,
                        entities=tl_entities or None,
                        reply_markup=markup,
                        no_webpage=(no_preview and text is not None) or None,
                    )
                )
            except errors.MessageNotModifiedError:
                return  # already so

        await self._call(bot, op, fallback=MessageRejected, paced=False)

    async def delete_messages(
        self, bot: BotAccount, channel: ChannelRef, message_ids: Sequence[int]
    ) -> None:
        ids = sorted(set(message_ids))
        for start in range(0, len(ids), DELETE_BATCH):
            batch = ids[start : start + DELETE_BATCH]
            await self._pace_send(bot, channel, _slot("delete", channel, tuple(batch)))

            async def op(p: PooledClient, batch: list[int] = batch) -> None:
                await self._on_channel(p, bot, channel, lambda c: drop(p, c, batch))

            await self._call(bot, op, fallback=MessageRejected, paced=False)

    async def pin_message(
        self,
        bot: BotAccount,
        channel: ChannelRef,
        message_id: int,
        *,
        unpin: bool = False,
        silent: bool = True,
    ) -> None:
        await self._pace_send(bot, channel, _slot("pin", channel, message_id, unpin))

        async def op(p: PooledClient) -> None:
            await self._on_channel(p, bot, channel, lambda c: pin(p, c))

        async def pin(p: PooledClient, c: types.InputChannel) -> None:
            try:
                await p.client(
                    functions.messages.UpdatePinnedMessageRequest(
                        peer=types.InputPeerChannel(c.channel_id, c.access_hash),
                        id=message_id,
                        silent=silent or None,
                        unpin=unpin or None,
                    )
                )
            except errors.ChatNotModifiedError:
                return  # already pinned (or not pinned): what was asked

        await self._call(bot, op, fallback=MessageRejected, paced=False)


async def drop(p: PooledClient, c: types.InputChannel, ids: list[int]) -> None:
    try:
        await p.client(functions.channels.DeleteMessagesRequest(c, ids))
    except (errors.MessageIdInvalidError, errors.MsgIdInvalidError):
        return  # already gone: what was asked


async def _current_markup(
    p: PooledClient, c: types.InputChannel, message_id: int
) -> types.TypeReplyMarkup | None:
    answer = await p.client(
        functions.channels.GetMessagesRequest(c, [types.InputMessageID(message_id)])
    )
    found = next((m for m in answer.messages if m.id == message_id), None)
    if not isinstance(found, types.Message):
        raise MessageGone("the message is not in the channel (deleted, or never there)")
    markup: types.TypeReplyMarkup | None = found.reply_markup
    return markup
