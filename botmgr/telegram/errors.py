"""Telethon exceptions → the gateway's domain errors.

Only this package sees Telethon's exception classes. Reasons are fixed, human-readable
sentences (plus the RPC error name), never the exception text: that can carry request
details, and nothing here may leak a token or a session.
"""

from __future__ import annotations

import re

from telethon import errors as tg

from botmgr.telegram.gateway import (
    AlreadyPosted,
    ChannelUnresolvable,
    FloodWait,
    MessageRejected,
    NotAdmin,
    TelegramError,
    TelegramUnavailable,
    TokenInvalid,
)
from botmgr.telegram.rich import MediaRejected, MessageGone, TooLate

#: The session (auth key) is no good but the token may still be: log in again once.
#: Only what says so: a 401 (core.telegram.org/api/errors: "UNAUTHORIZED … the
#: authorization key is not registered / was revoked"), AUTH_KEY_DUPLICATED (406: one key
#: used from two IP addresses at once is destroyed; Telethon AuthKeyDuplicatedError) and
#: the transport's -404 for an unknown key. Telethon 1.45 turns *every* 406 it does not
#: know (e.g. TOPIC_CLOSED) into a bare AuthKeyError: that is a per-call refusal, named
#: by to_domain, and the session stays.
SESSION_DEAD: tuple[type[BaseException], ...] = (
    tg.UnauthorizedError,  # AUTH_KEY_UNREGISTERED, SESSION_REVOKED, USER_DEACTIVATED …
    tg.AuthKeyDuplicatedError,
    tg.AuthKeyNotFound,  # the server does not know the key at all (transport -404)
)

_SPECIFIC: list[tuple[tuple[type[BaseException], ...], type[TelegramError], str]] = [
    (
        (tg.AccessTokenInvalidError, tg.AccessTokenExpiredError),
        TokenInvalid,
        "the bot token is invalid, expired or revoked",
    ),
    (
        (tg.UsernameNotOccupiedError, tg.UsernameInvalidError),
        ChannelUnresolvable,
        "no channel with this username",
    ),
    (
        (tg.ChannelPrivateError,),
        ChannelUnresolvable,
        "the channel is private, deleted, or the bot is not in it",
    ),
    (
        (
            tg.ChannelInvalidError,
            tg.ChannelIdInvalidError,
            tg.PeerIdInvalidError,
            tg.ChatIdInvalidError,
            tg.ChannelPublicGroupNaError,
        ),
        ChannelUnresolvable,
        "the channel is invalid or not visible to the bot",
    ),
    (
        (tg.ChatAdminRequiredError,),
        NotAdmin,
        "the bot is not an admin of the channel, or lacks the admin right this needs",
    ),
    (
        (
            tg.ChatWriteForbiddenError,
            tg.ChatSendPlainForbiddenError,
            tg.ChatRestrictedError,
            tg.UserBannedInChannelError,
        ),
        NotAdmin,
        "the bot may not post in the channel",
    ),
    (
        (tg.UserNotParticipantError,),
        NotAdmin,
        "the bot is not a member of the channel",
    ),
    (
        (tg.RandomIdDuplicateError,),
        AlreadyPosted,
        "the message was already posted (same random_id)",
    ),
    (
        (tg.MessageTooLongError, tg.EntitiesTooLongError),
        MessageRejected,
        "the message is too long",
    ),
    (
        (tg.MessageEmptyError,),
        MessageRejected,
        "the message is empty",
    ),
    (
        (tg.EntityBoundsInvalidError,),
        MessageRejected,
        "the message formatting is invalid",
    ),
    # Rich posts (botmgr/telegram/rich.py). Each reason ends with Telegram's name.
    (
        (tg.MediaCaptionTooLongError,),
        MediaRejected,
        "the caption is too long (at most 1,024 characters)",
    ),
    (
        (
            tg.PhotoInvalidDimensionsError,
            tg.PhotoSaveFileInvalidError,
            tg.ImageProcessFailedError,
            tg.PhotoExtInvalidError,
            tg.PhotoContentTypeInvalidError,
            tg.PhotoInvalidError,
        ),
        MediaRejected,
        "Telegram cannot use this photo (at most 10 MB, width + height ≤ 10,000, sides ratio ≤ 20)",
    ),
    (
        (tg.MultiMediaTooLongError, tg.MediaGroupedInvalidError, tg.GroupedMediaInvalidError),
        MediaRejected,
        "Telegram refused the album (2–10 files; documents only with documents)",
    ),
    (
        (
            tg.MediaEmptyError,
            tg.MediaInvalidError,
            tg.DocumentInvalidError,
            tg.MediaPrevInvalidError,
            tg.MediaNewInvalidError,
            tg.FileReferenceExpiredError,
            tg.FileReferenceEmptyError,
            tg.FileReferenceInvalidError,
            tg.FileIdInvalidError,
        ),
        MediaRejected,
        "Telegram refused the file",
    ),
    (
        (
            tg.FilePartsInvalidError,
            tg.FilePartInvalidError,
            tg.FilePartEmptyError,
            tg.FilePartTooBigError,
            tg.FilePartSizeInvalidError,
            tg.FilePartSizeChangedError,
            tg.FilePartLengthInvalidError,
            tg.FilePartMissingError,
            tg.FilePart0MissingError,
            tg.Md5ChecksumInvalidError,
        ),
        MediaRejected,
        "the file upload failed or the file is too large",
    ),
    (
        (
            tg.ButtonUrlInvalidError,
            tg.ButtonTextInvalidError,
            tg.ButtonTypeInvalidError,
            tg.ReplyMarkupInvalidError,
            tg.ReplyMarkupTooLongError,
        ),
        MessageRejected,
        "Telegram refused the buttons (http(s)/tg URLs, ≤ 8 a row, ≤ 100 in all)",
    ),
    (
        (tg.MessageIdInvalidError, tg.MsgIdInvalidError),
        MessageGone,
        "the message is not in the channel (deleted, or never there)",
    ),
    (
        (tg.MessageEditTimeExpiredError,),
        TooLate,
        "too late to edit this message",
    ),
    (
        (tg.MessageDeleteForbiddenError,),
        TooLate,
        "Telegram refused to delete the message: bots may delete posts up to 48 hours old,"
        " others' posts only with the delete right",
    ),
    (
        (tg.MessageAuthorRequiredError,),
        NotAdmin,
        "the bot may edit others' posts only with the edit_messages right",
    ),
    (
        (tg.PinRestrictedError,),
        NotAdmin,
        "the bot may not pin messages here",
    ),
]

#: A flood wait without a number (bare FLOOD) still has to be honoured somehow.
DEFAULT_FLOOD_SECONDS = 60


def _name(exc: BaseException) -> str:
    """The RPC error's NAME: a generic class carries it in ``message``; a specific class
    only in its own name (its ``message`` is the generic one, e.g. BAD_REQUEST)."""
    cls = type(exc)
    if isinstance(exc, tg.FilePartMissingError):  # a pattern: FILE_PART_(\d+)_MISSING
        return f"FILE_PART_{exc.which}_MISSING"
    message = getattr(exc, "message", None)
    if cls.__module__.endswith("rpcbaseerrors") and isinstance(message, str):
        return message
    if isinstance(exc, tg.RPCError) and cls.__name__.endswith("Error"):
        return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__[: -len("Error")]).upper()
    return cls.__name__


def error_name(exc: BaseException) -> str:
    """What to call ``exc`` in a metric or a log: Telegram's error NAME for an RPC error
    (FLOOD_WAIT, CHAT_WRITE_FORBIDDEN), else the exception's class (TimeoutError)."""
    return _name(exc)


def to_domain(
    exc: BaseException, *, fallback: type[TelegramError] = TelegramError
) -> TelegramError:
    """The domain error for a Telethon (or network) exception.

    ``fallback`` is the class for a 400/403 this table does not know; which one fits
    depends on the call (sending a message vs. resolving a channel).
    """
    if isinstance(exc, TelegramError):
        return exc
    if isinstance(exc, tg.FloodError):
        seconds = getattr(exc, "seconds", None)
        return FloodWait(int(seconds) if seconds is not None else DEFAULT_FLOOD_SECONDS)
    for classes, domain, reason in _SPECIFIC:
        if isinstance(exc, classes):
            return domain(f"{reason} ({_name(exc)})")
    if isinstance(exc, tg.AuthKeyDuplicatedError):
        # Still duplicated after the one fresh login: another host uses the bot's key at
        # the same time. Nothing says the token is bad; ask again later.
        return TelegramUnavailable(f"the bot's session is in use elsewhere ({_name(exc)})")
    if isinstance(exc, SESSION_DEAD):
        return TokenInvalid(f"the bot's authorization was revoked ({_name(exc)})")
    if isinstance(exc, tg.ServerError | tg.TimedOutError | tg.InvalidDCError):
        return TelegramUnavailable(f"Telegram failed to answer ({_name(exc)})")
    if isinstance(exc, TimeoutError):
        return TelegramUnavailable("Telegram did not answer in time")
    if isinstance(exc, ConnectionError | OSError | tg.InvalidBufferError | tg.SecurityError):
        return TelegramUnavailable("cannot connect to Telegram")
    if isinstance(exc, tg.RPCError):
        return fallback(f"Telegram refused the request ({_name(exc)})")
    return TelegramUnavailable(f"unexpected failure talking to Telegram ({type(exc).__name__})")
