"""What every way of posting into a channel shares: who may post, text and caption
checks, random_id de-duplication and the Updates answer."""

from __future__ import annotations

from collections.abc import Sequence

from telethon.tl import types

from tgemu.methods import peers, render
from tgemu.methods.base import Call
from tgemu.rpc import RpcError
from tgemu.world import Channel, Member, Message

MAX_MESSAGE_LENGTH = 4096
#: messages.sendMedia: "MEDIA_CAPTION_TOO_LONG The caption is too long"; help.getConfig's
#: caption_length_max and the Bot API ("Photo caption, 0-1024 characters after
#: entities parsing").
MAX_CAPTION_LENGTH = 1024


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def member_of(call: Call, peer: types.TypeInputPeer) -> tuple[Channel, Member]:
    """The channel and the caller's membership: not a member → CHAT_WRITE_FORBIDDEN
    (public) or CHANNEL_PRIVATE (private)."""
    if not isinstance(peer, types.InputPeerChannel):
        raise RpcError(400, "PEER_ID_INVALID")
    channel = peers.channel(call, peer)
    member = peers.membership(call, channel)
    if member is None:
        if channel.username is None:
            raise RpcError(400, "CHANNEL_PRIVATE")
        raise RpcError(403, "CHAT_WRITE_FORBIDDEN")
    return channel, member


def postable(call: Call, peer: types.TypeInputPeer) -> Channel:
    """A channel the caller may post in: an admin without post_messages gets
    CHAT_ADMIN_REQUIRED, a plain member CHAT_WRITE_FORBIDDEN."""
    channel, member = member_of(call, peer)
    if not member.can_post():
        if member.admin_rights is not None:
            raise RpcError(400, "CHAT_ADMIN_REQUIRED")
        raise RpcError(403, "CHAT_WRITE_FORBIDDEN")
    return channel


def checked_text(
    text: str,
    entities: Sequence[types.TypeMessageEntity] | None,
    *,
    caption: bool,
) -> list[dict]:
    """The entities as stored, after Telegram's length and bounds checks: a message needs
    text (MESSAGE_EMPTY) of ≤ 4096 UTF-16 units (MESSAGE_TOO_LONG), a caption may be empty
    but ≤ 1024 (MEDIA_CAPTION_TOO_LONG)."""
    if not caption and not text.strip():
        raise RpcError(400, "MESSAGE_EMPTY")
    length = utf16_len(text)
    if caption and length > MAX_CAPTION_LENGTH:
        raise RpcError(400, "MEDIA_CAPTION_TOO_LONG")
    if not caption and length > MAX_MESSAGE_LENGTH:
        raise RpcError(400, "MESSAGE_TOO_LONG")
    stored = [render.entity_to_dict(e) for e in entities or []]
    for e in stored:
        if e["offset"] < 0 or e["length"] <= 0 or e["offset"] + e["length"] > length:
            raise RpcError(400, "ENTITY_BOUNDS_INVALID")
    return stored


def sent_before(call: Call, channel: Channel, random_ids: Sequence[int | None]) -> list[Message]:
    """What these random_ids already posted: [] when none was used; the original
    messages when Telegram answers them again ("original" behaviour); otherwise
    500 RANDOM_ID_DUPLICATE. Any one used id counts: an album is posted whole or not."""
    state = call.world.bot_state(call.me.id)
    used = [state.random_ids.get(r) for r in random_ids if r is not None]
    if not any(used):
        return []
    originals = [
        channel.messages.get(s[1]) if s is not None and s[0] == channel.id else None for s in used
    ]
    if not call.behaviour.random_id_original or not all(originals):
        raise RpcError(500, "RANDOM_ID_DUPLICATE")
    return [m for m in originals if m is not None]


def check_rate(call: Call, channel: Channel) -> None:
    wait = call.limiter.check_send(call.me.id, channel.id)
    if wait:
        raise RpcError(420, f"FLOOD_WAIT_{wait}")


def answer(call: Call, channel: Channel, messages: Sequence[Message]) -> types.Updates:
    """updateMessageID (random_id → id) and updateNewChannelMessage for each message, as
    Telegram answers a send (Telethon needs both to return the sent message)."""
    me = call.me
    updates: list[types.TypeUpdate] = [
        types.UpdateMessageID(id=m.id, random_id=m.random_id)
        for m in messages
        if m.random_id is not None
    ]
    updates += [
        types.UpdateNewChannelMessage(
            message=render.message(me.id, channel, m, call.world), pts=m.pts, pts_count=1
        )
        for m in messages
    ]
    return types.Updates(
        updates=updates,
        users=[render.user(call.world, me.id, me)],
        chats=[render.channel(call.world, me.id, channel)],
        date=messages[-1].date,
        seq=0,
    )
