"""Channel references as callers write them, parsed without talking to Telegram.

Accepted (SPEC.md §4): ``https://t.me/name`` (also ``http``, ``telegram.me``,
``telegram.dog``, a trailing message id, ``/s/name`` previews, a query string),
``t.me/name``, ``@name``, ``https://t.me/c/<id>/<msg>``, ``-100<id>``, ``<id>``,
``https://t.me/+HASH``, ``https://t.me/joinchat/HASH``, ``tg://resolve?domain=name``,
``tg://join?invite=HASH``. A bare word without ``@`` or a link is refused as garbage.

Ids: the canonical form is the bare MTProto channel id (positive). The Bot API writes
the same channel as ``-100`` followed by the id, i.e. ``-(10**12 + id)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qs, urlsplit

from botmgr.models import Channel
from botmgr.telegram.gateway import ChannelRef

BOT_API_OFFSET = 10**12
MAX_BARE_ID = 2**52  # Telegram ids fit in 52 bits; also keeps every form inside int64

_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")
_INVITE = re.compile(r"[A-Za-z0-9_-]{4,64}")
_HOSTS = {"t.me", "www.t.me", "telegram.me", "www.telegram.me", "telegram.dog"}
# t.me paths that are not usernames.
_RESERVED = {
    "joinchat",
    "addstickers",
    "addemoji",
    "share",
    "proxy",
    "socks",
    "iv",
    "login",
    "addlist",
    "addtheme",
    "setlanguage",
    "bg",
    "invoice",
    "boost",
    "contact",
    "confirmphone",
    "k",
    "a",
    "z",
}


class BadReference(ValueError):
    """Not a channel reference this service understands."""


class RefKind(StrEnum):
    username = "username"
    id = "id"
    invite = "invite"


@dataclass(frozen=True, slots=True)
class ParsedRef:
    kind: RefKind
    username: str | None = None
    tg_id: int | None = None
    invite_hash: str | None = None


def parse_channel_id(raw: int | str) -> int:
    """``-100<id>``, ``<id>`` (int or string) → the bare id. Raises BadReference."""
    if isinstance(raw, bool):
        raise BadReference("not a channel id")
    if isinstance(raw, str):
        text = raw.strip()
        if not re.fullmatch(r"-?\d{1,20}", text):
            raise BadReference("not a channel id")
        value = int(text)
    elif isinstance(raw, int):
        value = raw
    else:
        raise BadReference("not a channel id")
    if value < 0:
        value = -value - BOT_API_OFFSET  # only the -100… form names a channel
    if not 0 < value < MAX_BARE_ID:
        raise BadReference("not a channel id")
    return value


def to_bot_api_id(tg_id: int) -> int:
    return -(BOT_API_OFFSET + tg_id)


def _username(name: str) -> ParsedRef:
    if not _USERNAME.fullmatch(name) or name.lower() in _RESERVED or name.endswith("_"):
        raise BadReference("not a valid username")
    return ParsedRef(RefKind.username, username=name)


def _invite(invite_hash: str) -> ParsedRef:
    # t.me/+<digits> is a phone number link (a user), not an invite.
    if not _INVITE.fullmatch(invite_hash) or invite_hash.isdigit():
        raise BadReference("not a valid invite link")
    return ParsedRef(RefKind.invite, invite_hash=invite_hash)


def _tg_scheme(text: str) -> ParsedRef:
    parts = urlsplit(text)
    query = parse_qs(parts.query)
    if parts.netloc == "resolve" and query.get("domain"):
        return _username(query["domain"][0])
    if parts.netloc == "join" and query.get("invite"):
        return _invite(query["invite"][0])
    raise BadReference("unsupported tg:// link")


def _link(text: str) -> ParsedRef:
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or (parts.hostname or "") not in _HOSTS:
        raise BadReference("not a Telegram link")
    segments = [s for s in parts.path.split("/") if s]
    if not segments:
        raise BadReference("link names no channel")
    head = segments[0]
    if head == "c" and len(segments) >= 2:
        return ParsedRef(RefKind.id, tg_id=parse_channel_id(segments[1]))
    if head == "joinchat" and len(segments) >= 2:
        return _invite(segments[1])
    if head.startswith("+"):
        return _invite(head[1:])
    if head == "s" and len(segments) >= 2:
        return _username(segments[1])
    if len(segments) > 2 or (len(segments) == 2 and not segments[1].isdigit()):
        raise BadReference("link names no channel")
    return _username(head)


def parse_reference(raw: int | str) -> ParsedRef:
    """Parse what a caller sent as ``channel``. Raises BadReference for garbage."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return ParsedRef(RefKind.id, tg_id=parse_channel_id(raw))
    if not isinstance(raw, str):
        raise BadReference("channel must be a link, @username or numeric id")
    text = raw.strip()
    if not text or len(text) > 512:
        raise BadReference("empty or oversized reference")
    if re.fullmatch(r"-?\d+", text):
        return ParsedRef(RefKind.id, tg_id=parse_channel_id(text))
    if text.startswith("@"):
        return _username(text[1:])
    if text.lower().startswith("tg://"):
        return _tg_scheme(text)
    lowered = text.lower()
    if lowered.startswith(("http://", "https://")) or lowered.split("/", 1)[0] in _HOSTS:
        return _link(text)
    raise BadReference("channel must be a link, @username or numeric id")


def channel_ref(channel: Channel) -> ChannelRef:
    """How the gateway is told to reach a stored channel."""
    return ChannelRef(
        tg_id=channel.tg_id, username=channel.username, access_hash=channel.access_hash
    )
