"""Rich posts at the gateway: send options, URL buttons, media, and what Telegram lets a
bot do to a post after it is published (edit, delete, pin).

The contract between the posts domain (botmgr/posts/) and the Telegram layer
(telethon_gateway.py, fake.py, and tgemu, which enforces Telegram's rules). Only the
dataclasses and domain errors below cross it; the gateway maps Telegram's RPC errors to
them, and each error's ``reason`` carries Telegram's own error name so an operator sees
why (e.g. ``"MESSAGE_EDIT_TIME_EXPIRED"``).
"""

from __future__ import annotations

from botmgr.telegram.content import (
    ALBUM_MAX,
    ALBUM_MIN,
    NO_OPTIONS,
    Buttons,
    MediaFile,
    MediaKind,
    PostOptions,
    UrlButton,
)
from botmgr.telegram.gateway import MessageRejected, TelegramError

__all__ = [
    "ALBUM_MAX",
    "ALBUM_MIN",
    "NO_OPTIONS",
    "Buttons",
    "MediaFile",
    "MediaKind",
    "MediaRejected",
    "MessageGone",
    "PostOptions",
    "TooLate",
    "UrlButton",
]


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
