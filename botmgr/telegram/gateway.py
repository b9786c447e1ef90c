"""The one interface the service uses to talk to Telegram.

Everything Telegram-specific (Telethon, its exceptions, TL types, access hashes, the
client pool) lives behind this module in ``telethon_gateway.py``. Services and tasks see
only the dataclasses and domain errors below. Every method is a coroutine meant to run on
the worker's (or the API's) single event loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from botmgr.telegram.content import Buttons, MediaFile, PostOptions


# ---------------------------------------------------------------- domain errors
class TelegramError(Exception):
    """Base of every error the gateway raises. ``reason`` is safe to store and show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenInvalid(TelegramError):
    """The token is wrong, expired or revoked, or the bot's session was unregistered."""


class ChannelUnresolvable(TelegramError):
    """Not a channel, no such username/id, a user or group, deleted, or unreachable."""


class NotAdmin(TelegramError):
    """The bot is not an admin of the channel, or lacks the right to post."""


class FloodWait(TelegramError):
    """Telegram asked to wait ``seconds`` before this bot may repeat the call."""

    def __init__(self, seconds: int) -> None:
        super().__init__(f"flood wait {seconds}s")
        self.seconds = seconds


class PacedWait(FloodWait):
    """The service's own pacer (clients.Pacer) holds a slot for the call ``exact``
    seconds ahead: a task retries at that moment, not at the next whole second
    (``seconds``, what every other reader of a FloodWait gets), which would leave
    every paced post up to a second late."""

    def __init__(self, exact: float) -> None:
        super().__init__(max(1, math.ceil(exact)))
        self.exact = exact


class LookupFlood(FloodWait):
    """A FloodWait on resolving a username (contacts.resolveUsername) only: calls that
    need no lookup — every channel the bot already knows — go on meanwhile (Telegram's
    420 is per method and input, core.telegram.org/api/errors; Telethon's local flood
    memory ``_flood_waited_requests`` is per request type, telethon/client/users.py)."""


class AlreadyPosted(TelegramError):
    """``random_id`` was used before: the message is already in the channel."""


class MessageRejected(TelegramError):
    """Telegram refused the message itself (too long, empty, bad entities)."""


class TelegramUnavailable(TelegramError):
    """Network failure, timeout or a 5xx from Telegram: worth retrying later."""


# ---------------------------------------------------------------- values
#: Bots pass up to 100000 to updates.getChannelDifference (method page: "max 100000;
#: ordinary (non-bot) users are supposed to pass 10-100"; Telethon 1.45
#: _updates/messagebox.py BOT_CHANNEL_DIFF_LIMIT = 100000; TDLib
#: MAX_BOT_CHANNEL_DIFFERENCE = 100000 // server-side limit). A wider gap is TooLong.
BOT_CHANNEL_DIFF_LIMIT = 100_000
#: A TooLong gap is read back by id (channels.getMessages, ≤ 100 ids a call, so ≤ 50
#: calls) up to this many ids; a wider one is reported incomplete, not read for minutes.
GAP_READ_MAX = 5_000


@dataclass(frozen=True, slots=True)
class BotAccount:
    """What the gateway needs to act as a bot. ``session`` is a Telethon StringSession
    (decrypted) or None before the first login."""

    bot_id: int
    token: str
    session: str | None = None
    # No token login before this moment (a FLOOD_WAIT Telegram gave an earlier login,
    # stored on the bot row so every task and process respects it).
    login_not_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class BotProfile:
    """Telegram's answer about a bot after login; ``session`` is to be stored encrypted."""

    tg_id: int
    username: str
    first_name: str
    session: str


@dataclass(frozen=True, slots=True)
class ChannelRef:
    """How to reach a channel: a public ``username`` or a bare MTProto ``tg_id``
    (positive, without the -100 prefix). ``access_hash`` when already known."""

    tg_id: int | None = None
    username: str | None = None
    access_hash: int | None = None


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    tg_id: int  # bare MTProto id
    title: str
    username: str | None
    access_hash: int | None = None
    # admin_channels only: when the bot was made admin (the updateChannelParticipant's
    # date); None when unknown (it was admin before anything this stream still holds).
    admin_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Rights:
    is_member: bool
    is_admin: bool
    can_post: bool


@dataclass(frozen=True, slots=True)
class Entity:
    """A message entity with Bot-API type names (``bold``, ``text_link`` …) and UTF-16
    offsets, as telegramify-markdown produces them."""

    type: str
    offset: int
    length: int
    url: str | None = None
    language: str | None = None
    custom_emoji_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelPost:
    id: int
    date: datetime


@dataclass(frozen=True, slots=True)
class MessageCounts:
    """A channel post's counters as read now: views, forwards, and reactions (the total
    over every reaction)."""

    views: int
    forwards: int
    reactions: int


#: channels.getMessages takes at most this many ids a call.
MESSAGES_PER_CALL = 100


@dataclass(slots=True)
class ChannelFeed:
    """What a channel's update stream said since ``pts``; ``pts`` is the new position to
    store. ``posts``: new posts (edits and pins are not posts); ``deleted``: ids deleted
    since (they no longer count). ``complete`` is False when the stream had a gap the
    gateway could not read back (channelDifferenceTooLong too wide to fill by id, or a
    PERSISTENT_TIMESTAMP_INVALID that restarted following): posts may be missing."""

    pts: int
    posts: list[ChannelPost] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    complete: bool = True


class SessionStore(Protocol):
    """Where the gateway persists a bot's (re)newed session after a login."""

    async def save(self, bot_id: int, session: str) -> None: ...


class BotMemory(Protocol):
    """What the gateway must remember of a bot beyond one process: the channels' access
    hashes Telegram gave it (so a new process reaches them without resolving usernames
    again, core.telegram.org/api/peers) and a login FLOOD_WAIT ("no login before T")."""

    async def channel_hashes(self, bot_id: int, tg_bot_id: int) -> dict[int, int]: ...

    async def save_channel_hash(
        self, bot_id: int, tg_bot_id: int, tg_channel_id: int, access_hash: int
    ) -> None: ...

    async def forget_channel_hash(self, bot_id: int, tg_channel_id: int) -> None: ...

    async def login_flood(self, bot_id: int, not_before: datetime) -> None: ...


class Gateway(Protocol):
    async def login(self, token: str) -> BotProfile:
        """Log in with ``token`` (a fresh session) and say who the bot is.
        Raises TokenInvalid, FloodWait (too many logins) or TelegramUnavailable."""

    async def resume(self, bot: BotAccount) -> BotProfile:
        """Connect with ``bot.session`` only (no token login) and say who it is.
        Raises TokenInvalid when the session is refused, TelegramUnavailable."""

    async def resolve_channel(self, bot: BotAccount, ref: ChannelRef) -> ChannelInfo:
        """Raises ChannelUnresolvable (garbage, not a channel, not visible to the bot)."""

    async def get_rights(self, bot: BotAccount, channel: ChannelRef) -> Rights: ...

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
        """Post and return the Telegram message id. Raises AlreadyPosted when
        ``random_id`` was used before (the message exists), NotAdmin, MessageRejected,
        FloodWait, TokenInvalid, ChannelUnresolvable."""

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
        """One file → messages.sendMedia with ``caption``; 2–10 → one album
        (messages.sendMultiMedia, ``random_ids[i]`` for item i, the caption on the first
        item). Returns the message ids in item order. Each file is uploaded once per bot
        (upload.saveFilePart / saveBigFilePart) and its upload reused for the same
        ``media_id``. Raises AlreadyPosted when the random ids were used before (the post
        exists; an album is refused whole), MediaRejected (also, before any call, for an
        album with buttons: sendMultiMedia takes no reply markup), plus send_message's
        errors."""

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
        """messages.editMessage: the text (a media post's caption) when ``text`` is not
        None, the buttons when ``buttons`` is not None (``()`` removes them). An edit
        that changes nothing (MESSAGE_NOT_MODIFIED) is a success. Telegram drops the
        buttons of an edit that does not repeat them, so with ``buttons=None`` the
        gateway reads the post's current ones first. Raises MessageGone, TooLate,
        NotAdmin (MESSAGE_AUTHOR_REQUIRED: another admin's post, no edit_messages
        right), MessageRejected, FloodWait."""

    async def delete_messages(
        self, bot: BotAccount, channel: ChannelRef, message_ids: Sequence[int]
    ) -> None:
        """channels.deleteMessages. Ids already gone are not an error. Raises TooLate,
        NotAdmin, FloodWait."""

    async def pin_message(
        self,
        bot: BotAccount,
        channel: ChannelRef,
        message_id: int,
        *,
        unpin: bool = False,
        silent: bool = True,
    ) -> None:
        """messages.updatePinnedMessage (``silent``: no notification of the pin).
        Pinning what is pinned (or unpinning what is not) is a success. Needs the
        edit_messages admin right (Bot API pinChatMessage). Raises MessageGone,
        NotAdmin, FloodWait."""

    async def channel_feed(
        self,
        bot: BotAccount,
        channel: ChannelRef,
        *,
        pts: int | None,
        after_id: int | None = None,
        since: datetime | None = None,
    ) -> ChannelFeed:
        """Posts published since ``pts`` (None: start following now, no posts).
        ``after_id``: the newest message id the caller already knows; when the stream
        is too long to replay, the ids after it are read by channels.getMessages (which
        bots may call) instead — without it, or past a bound, the feed is incomplete.
        ``since`` with no ``pts``: a first read that also returns the posts dated
        ``since`` or later (the stream from its start; past the difference limit, read
        back by id from the top message, ≤ GAP_READ_MAX ids, else incomplete)."""

    async def get_views(
        self, bot: BotAccount, channel: ChannelRef, ids: list[int]
    ) -> dict[int, int]:
        """Views per message id (missing/deleted ids absent); batches of ≤100 inside."""

    async def message_counts(
        self, bot: BotAccount, channel: ChannelRef, ids: Sequence[int]
    ) -> dict[int, MessageCounts]:
        """Views, forwards and reactions per message id (missing/deleted ids absent):
        channels.getMessages, ≤ MESSAGES_PER_CALL ids a call, each call paced."""

    async def subscribers(self, bot: BotAccount, channel: ChannelRef) -> int | None: ...

    async def admin_channels(self, bot: BotAccount) -> list[ChannelInfo]:
        """Channels the bot is admin of as learned from its update stream: every
        promotion seen (in this process, or still kept by Telegram after a restart)
        minus later demotions, not only those since the last call (how invite-link
        bindings get attached). ``admin_since`` says when each promotion happened."""

    async def place(self, bot_ids: Sequence[int]) -> dict[str, list[int]] | None:
        """Which worker process should run each bot's share of a fleet-wide job
        (ownership.Ownership.place): None = this one, all of them."""

    async def close(self) -> None: ...
