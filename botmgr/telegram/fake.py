"""An in-memory Gateway for tests of the service's rules: no network, no Telethon.

It keeps a tiny world of bots (by token), channels, admin rights, messages with their
``random_id``, views and an update position per channel, and answers as the contract in
gateway.py says Telegram does (a repeated ``random_id`` is AlreadyPosted, a revoked
token is TokenInvalid on every call, a bot that is no admin cannot post …). ``fail()``
makes the next calls of a method raise a chosen domain error; ``calls`` records every
call. The wire itself is proven against tgemu by the integration tests.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from botmgr.telegram.gateway import (
    BOT_CHANNEL_DIFF_LIMIT,
    GAP_READ_MAX,
    MESSAGES_PER_CALL,
    AlreadyPosted,
    BotAccount,
    BotProfile,
    ChannelFeed,
    ChannelInfo,
    ChannelPost,
    ChannelRef,
    ChannelUnresolvable,
    Entity,
    MessageCounts,
    NotAdmin,
    Rights,
    TelegramError,
    TokenInvalid,
)
from botmgr.telegram.rich import (
    ALBUM_MAX,
    ALBUM_MIN,
    NO_OPTIONS,
    Buttons,
    MediaFile,
    MediaRejected,
    MessageGone,
    PostOptions,
)


@dataclass
class FakeMessage:
    id: int
    date: datetime
    text: str
    random_id: int | None
    pts: int
    views: int = 0
    deleted: bool = False
    forwards: int = 0
    reactions: int = 0
    options: PostOptions = NO_OPTIONS
    media: MediaFile | None = None
    album: int | None = None  # the grouped_id of an album's items
    pinned: bool = False
    edit_date: datetime | None = None


@dataclass
class FakeChannel:
    tg_id: int
    title: str
    username: str | None
    access_hash: int
    subscribers: int = 0
    rights: dict[int, Rights] = field(default_factory=dict)  # bot's Telegram id → rights
    admin_since: dict[int, datetime] = field(default_factory=dict)  # bot's Telegram id → when
    messages: list[FakeMessage] = field(default_factory=list)
    pts: int = 1
    deletions: list[tuple[int, int]] = field(default_factory=list)  # (pts, message id)

    def info(self) -> ChannelInfo:
        return ChannelInfo(self.tg_id, self.title, self.username, self.access_hash)


@dataclass
class _Bot:
    tg_id: int
    username: str
    revoked: bool = False


class FakeGateway:
    def __init__(self) -> None:
        self._ids = itertools.count(1000)
        self.bots: dict[str, _Bot] = {}  # token → bot
        self.channels: dict[int, FakeChannel] = {}
        self.calls: list[tuple[str, int | None]] = []  # (method, channel tg id)
        self._faults: dict[str, list[TelegramError]] = {}
        self.closed = False
        # As Telegram and the Telethon gateway: a stream more than diff_limit updates
        # behind is TooLong, read back by id for up to gap_read_max ids after after_id.
        self.diff_limit = BOT_CHANNEL_DIFF_LIMIT
        self.gap_read_max = GAP_READ_MAX
        # A repeated random_id: Telegram answers RANDOM_ID_DUPLICATE (AlreadyPosted), or
        # the original message as if just sent (True): both mean "already posted".
        self.repeat_answers_original = False
        self.placement: dict[str, list[int]] | None = None  # what ``place`` answers

    # ------------------------------------------------------------- the world
    def add_bot(self, username: str | None = None) -> str:
        """A new bot; returns its token."""
        tg_id = next(self._ids)
        token = f"{tg_id}:{'A' * 20}{tg_id}"
        self.bots[token] = _Bot(tg_id, username or f"fake{tg_id}_bot")
        return token

    def revoke(self, token: str) -> None:
        self.bots[token].revoked = True

    def add_channel(
        self, title: str = "Channel", username: str | None = None, subscribers: int = 0
    ) -> FakeChannel:
        tg_id = next(self._ids)
        channel = FakeChannel(tg_id, title, username, tg_id * 7, subscribers)
        self.channels[tg_id] = channel
        return channel

    def grant(
        self,
        channel: FakeChannel,
        token: str,
        *,
        can_post: bool = True,
        since: datetime | None = None,
    ) -> None:
        bot = self.bots[token]
        channel.rights[bot.tg_id] = Rights(is_member=True, is_admin=True, can_post=can_post)
        channel.admin_since[bot.tg_id] = since or datetime.now(UTC)

    def demote(self, channel: FakeChannel, token: str) -> None:
        channel.rights.pop(self.bots[token].tg_id, None)

    def publish(
        self, channel: FakeChannel, text: str, *, date: datetime | None = None, views: int = 0
    ) -> FakeMessage:
        """A post by someone else (another admin): seen in the channel's update stream."""
        return self._append(channel, text, None, date or datetime.now(UTC), views)

    def edit(self, channel: FakeChannel, message: FakeMessage, times: int = 1) -> None:
        """Edits move pts (one per edit) but are not posts."""
        channel.pts += times

    def pin(self, channel: FakeChannel, message: FakeMessage) -> None:
        channel.pts += 1

    def delete(self, channel: FakeChannel, message: FakeMessage) -> None:
        """A deleted post: one pts, in the stream as a deletion; no views any more."""
        channel.pts += 1
        message.deleted = True
        channel.deletions.append((channel.pts, message.id))

    def fail(self, method: str, error: TelegramError, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` raise ``error``."""
        self._faults.setdefault(method, []).extend([error] * times)

    def count(self, method: str) -> int:
        return sum(1 for name, _ in self.calls if name == method)

    # ------------------------------------------------------------- plumbing
    def _enter(self, method: str, bot: BotAccount | str, ref: ChannelRef | None = None) -> _Bot:
        self.calls.append((method, ref.tg_id if ref else None))
        faults = self._faults.get(method)
        if faults:
            raise faults.pop(0)
        token = bot if isinstance(bot, str) else bot.token
        found = self.bots.get(token)
        if found is None or found.revoked:
            raise TokenInvalid("ACCESS_TOKEN_INVALID")
        return found

    def _channel(self, ref: ChannelRef) -> FakeChannel:
        for channel in self.channels.values():
            if ref.tg_id == channel.tg_id or (
                ref.username
                and channel.username
                and ref.username.lower() == channel.username.lower()
            ):
                return channel
        raise ChannelUnresolvable("CHANNEL_INVALID")

    def _append(
        self, channel: FakeChannel, text: str, random_id: int | None, date: datetime, views: int
    ) -> FakeMessage:
        channel.pts += 1
        message_id = len(channel.messages) + 1
        message = FakeMessage(message_id, date, text, random_id, channel.pts, views)
        channel.messages.append(message)
        return message

    # ------------------------------------------------------------- the contract
    async def login(self, token: str) -> BotProfile:
        bot = self._enter("login", token)
        return BotProfile(bot.tg_id, bot.username, "Fake", session=f"session-{bot.tg_id}")

    async def resume(self, bot: BotAccount) -> BotProfile:
        me = self._enter("resume", bot)
        if bot.session != f"session-{me.tg_id}":
            raise TokenInvalid("AUTH_KEY_UNREGISTERED")
        return BotProfile(me.tg_id, me.username, "Fake", session=bot.session)

    async def resolve_channel(self, bot: BotAccount, ref: ChannelRef) -> ChannelInfo:
        self._enter("resolve_channel", bot, ref)
        return self._channel(ref).info()

    async def get_rights(self, bot: BotAccount, channel: ChannelRef) -> Rights:
        me = self._enter("get_rights", bot, channel)
        found = self._channel(channel).rights.get(me.tg_id)
        return found or Rights(is_member=False, is_admin=False, can_post=False)

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
        me = self._enter("send_message", bot, channel)
        target = self._channel(channel)
        original = next((m for m in target.messages if m.random_id == random_id), None)
        if original is not None and self.repeat_answers_original:
            return original.id
        if original is not None:
            raise AlreadyPosted("RANDOM_ID_DUPLICATE")
        self._may_post(target, me)
        message = self._append(target, text, random_id, datetime.now(UTC), 0)
        message.options = options or NO_OPTIONS
        return message.id

    def _may_post(self, target: FakeChannel, me: _Bot) -> None:
        rights = target.rights.get(me.tg_id)
        if rights is None or not rights.can_post:
            raise NotAdmin("CHAT_WRITE_FORBIDDEN")

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
        """As Telegram: one file, or an album of 2–10 sent at once (all or nothing); a
        repeated random id is AlreadyPosted; a photo over 10 MB is PHOTO_SAVE_FILE_INVALID."""
        me = self._enter("send_media", bot, channel)
        target = self._channel(channel)
        if len(media) != len(random_ids) or not (
            len(media) == 1 or ALBUM_MIN <= len(media) <= ALBUM_MAX
        ):
            raise MediaRejected("MEDIA_INVALID")
        if any(m.random_id in random_ids for m in target.messages):
            raise AlreadyPosted("RANDOM_ID_DUPLICATE")
        self._may_post(target, me)
        for file in media:
            if file.kind == "photo" and len(file.data) > 10 * 1024 * 1024:
                raise MediaRejected("PHOTO_SAVE_FILE_INVALID")
        album = next(self._ids) if len(media) > 1 else None
        ids = []
        for index, (file, random_id) in enumerate(zip(media, random_ids, strict=True)):
            text = caption if index == 0 else ""
            message = self._append(target, text, random_id, datetime.now(UTC), 0)
            message.options, message.media, message.album = options or NO_OPTIONS, file, album
            ids.append(message.id)
        return ids

    def _message(self, target: FakeChannel, message_id: int) -> FakeMessage:
        found = next((m for m in target.messages if m.id == message_id and not m.deleted), None)
        if found is None:
            raise MessageGone("MESSAGE_ID_INVALID")
        return found

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
        me = self._enter("edit_message", bot, channel)
        target = self._channel(channel)
        self._may_post(target, me)
        message = self._message(target, message_id)
        if text is not None:
            message.text = text
        if buttons is not None:
            message.options = replace(message.options, buttons=buttons)
        message.edit_date = datetime.now(UTC)
        self.edit(target, message)

    async def delete_messages(
        self, bot: BotAccount, channel: ChannelRef, message_ids: Sequence[int]
    ) -> None:
        me = self._enter("delete_messages", bot, channel)
        target = self._channel(channel)
        self._may_post(target, me)
        for message in target.messages:
            if message.id in message_ids and not message.deleted:
                self.delete(target, message)

    async def pin_message(
        self,
        bot: BotAccount,
        channel: ChannelRef,
        message_id: int,
        *,
        unpin: bool = False,
        silent: bool = True,
    ) -> None:
        me = self._enter("pin_message", bot, channel)
        target = self._channel(channel)
        self._may_post(target, me)
        message = self._message(target, message_id)
        message.pinned = not unpin
        self.pin(target, message)

    async def channel_feed(
        self,
        bot: BotAccount,
        channel: ChannelRef,
        *,
        pts: int | None,
        after_id: int | None = None,
        since: datetime | None = None,
    ) -> ChannelFeed:
        self._enter("channel_feed", bot, channel)
        target = self._channel(channel)
        alive = [m for m in target.messages if not m.deleted]
        if pts is None and since is not None:  # the stream from its start (pts 1)
            if target.pts - 1 <= self.diff_limit:
                posts = [ChannelPost(m.id, m.date) for m in alive if m.date >= since]
                return ChannelFeed(pts=target.pts, posts=posts)
            # TooLong: read back by id from the top message, at most gap_read_max ids
            top = len(target.messages)
            window = [m for m in alive if m.id > top - self.gap_read_max]
            reached = top <= self.gap_read_max or any(m.date < since for m in window)
            posts = [ChannelPost(m.id, m.date) for m in window if m.date >= since]
            return ChannelFeed(pts=target.pts, posts=posts, complete=reached)
        if pts is None:
            return ChannelFeed(pts=target.pts)
        if pts > target.pts:  # PERSISTENT_TIMESTAMP_INVALID: restart at the current pts
            return ChannelFeed(pts=target.pts, complete=False)
        if target.pts - pts > self.diff_limit:  # TooLong
            top = len(target.messages)
            if after_id is not None and top - after_id <= self.gap_read_max:
                gap = [ChannelPost(m.id, m.date) for m in alive if m.id > after_id]
                return ChannelFeed(pts=target.pts, posts=gap)
            latest = [ChannelPost(m.id, m.date) for m in alive[-20:]]
            return ChannelFeed(pts=target.pts, posts=latest, complete=False)
        posts = [ChannelPost(m.id, m.date) for m in alive if m.pts > pts]
        deleted = [i for p, i in target.deletions if p > pts]
        return ChannelFeed(pts=target.pts, posts=posts, deleted=deleted)

    async def get_views(
        self, bot: BotAccount, channel: ChannelRef, ids: list[int]
    ) -> dict[int, int]:
        self._enter("get_views", bot, channel)
        wanted = set(ids)
        found = self._channel(channel).messages
        return {m.id: m.views for m in found if m.id in wanted and not m.deleted}

    async def message_counts(
        self, bot: BotAccount, channel: ChannelRef, ids: Sequence[int]
    ) -> dict[int, MessageCounts]:
        """One recorded call per batch of ≤ MESSAGES_PER_CALL ids, as the wire makes."""
        unique = sorted(set(ids))
        found: dict[int, MessageCounts] = {}
        for start in range(0, len(unique), MESSAGES_PER_CALL):
            self._enter("message_counts", bot, channel)
            wanted = set(unique[start : start + MESSAGES_PER_CALL])
            for m in self._channel(channel).messages:
                if m.id in wanted and not m.deleted:
                    found[m.id] = MessageCounts(m.views, m.forwards, m.reactions)
        return found

    async def subscribers(self, bot: BotAccount, channel: ChannelRef) -> int | None:
        self._enter("subscribers", bot, channel)
        return self._channel(channel).subscribers

    async def admin_channels(self, bot: BotAccount) -> list[ChannelInfo]:
        me = self._enter("admin_channels", bot)
        return [
            replace(c.info(), admin_since=c.admin_since.get(me.tg_id))
            for c in self.channels.values()
            if me.tg_id in c.rights
        ]

    async def place(self, bot_ids: Sequence[int]) -> dict[str, list[int]] | None:
        """``placement`` (queue → bot ids) as a fleet would answer; None: all here."""
        if self.placement is None:
            return None
        return {q: [b for b in bots if b in bot_ids] for q, bots in self.placement.items()}

    async def close(self) -> None:
        self.closed = True
