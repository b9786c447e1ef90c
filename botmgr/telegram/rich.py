"""Rich posts at the gateway: send options, URL buttons, media, and what Telegram lets a
bot do to a post after it is published (edit, delete, pin).

The contract between the posts domain (botmgr/posts/) and the Telegram layer
(telethon_gateway.py, fake.py, and tgemu, which enforces Telegram's rules). Only the
dataclasses and domain errors below cross it; the gateway maps Telegram's RPC errors to
them, and each error's ``reason`` carries Telegram's own error name so an operator sees
why (e.g. ``"MESSAGE_EDIT_TIME_EXPIRED"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from botmgr.telegram.gateway import MessageRejected, TelegramError


# ---------------------------------------------------------------- domain errors
class MediaRejected(MessageRejected):
    """Telegram refused a file (too large, wrong type, an album mixing what it can't)."""


class MessageGone(TelegramError):
    """The message is not in the channel any more (deleted, or never there):
    MESSAGE_ID_INVALID. Deleting it again is a success for the caller."""


class TooLate(TelegramError):
    """Telegram's time limit for this change has passed (MESSAGE_EDIT_TIME_EXPIRED,
    MESSAGE_DELETE_FORBIDDEN). Note: Telegram answers MESSAGE_DELETE_FORBIDDEN both for a
    post older than 48 hours (bots, Bot API deleteMessage) and for another admin's post
    when the bot lacks the delete_messages right; the reason names both."""


# ---------------------------------------------------------------- values
@dataclass(frozen=True, slots=True)
class UrlButton:
    """A keyboardButtonUrl under a post. ``url``: http(s):// or tg:// (validated by the
    posts domain before it gets here)."""

    text: str
    url: str


Buttons = tuple[tuple[UrlButton, ...], ...]  # rows of buttons (replyInlineMarkup)


@dataclass(frozen=True, slots=True)
class PostOptions:
    silent: bool = False  # the ``silent`` flag: subscribers get no sound
    no_preview: bool = False  # the ``no_webpage`` flag: no link preview
    buttons: Buttons = ()


NO_OPTIONS = PostOptions()

MediaKind = Literal["photo", "video", "document"]


@dataclass(frozen=True, slots=True)
class MediaFile:
    """A file stored by the service (POST /media), to be sent as a photo, a video or a
    document. ``media_id`` is the service's id: the gateway uploads a file once per bot
    and reuses that upload (the InputMedia of its first send) for the same id."""

    media_id: int
    kind: MediaKind
    name: str
    mime: str
    data: bytes


#: messages.sendMultiMedia: an album holds 2–10 items (core.telegram.org/api/files#albums).
ALBUM_MIN, ALBUM_MAX = 2, 10
