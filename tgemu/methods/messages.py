"""messages.sendMessage: a bot posting into a channel it administers."""

from __future__ import annotations

from telethon.tl import functions, types

from tgemu.methods import peers, render
from tgemu.methods.base import Call, method
from tgemu.rpc import RpcError

MAX_MESSAGE_LENGTH = 4096


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@method(functions.messages.SendMessageRequest)
def send_message(call: Call, request: functions.messages.SendMessageRequest) -> types.Updates:
    if not isinstance(request.peer, types.InputPeerChannel):
        raise RpcError(400, "PEER_ID_INVALID")
    channel = peers.channel(call, request.peer)
    me = call.me
    member = peers.membership(call, channel)
    if member is None:
        if channel.username is None:
            raise RpcError(400, "CHANNEL_PRIVATE")
        raise RpcError(403, "CHAT_WRITE_FORBIDDEN")
    if not member.can_post():
        if member.admin_rights is not None:
            raise RpcError(400, "CHAT_ADMIN_REQUIRED")
        raise RpcError(403, "CHAT_WRITE_FORBIDDEN")
    text = request.message
    if not text.strip():
        raise RpcError(400, "MESSAGE_EMPTY")
    length = utf16_len(text)
    if length > MAX_MESSAGE_LENGTH:
        raise RpcError(400, "MESSAGE_TOO_LONG")
    entities = [render.entity_to_dict(e) for e in request.entities or []]
    for e in entities:
        if e["offset"] < 0 or e["length"] <= 0 or e["offset"] + e["length"] > length:
            raise RpcError(400, "ENTITY_BOUNDS_INVALID")
    state = call.world.bot_state(me.id)
    sent = state.random_ids.get(request.random_id) if request.random_id is not None else None
    original = channel.messages.get(sent[1]) if sent and sent[0] == channel.id else None
    if sent is not None and (original is None or not call.behaviour.random_id_original):
        raise RpcError(500, "RANDOM_ID_DUPLICATE")
    if original is not None:
        msg = original  # answered as if just sent; nothing new is posted
    else:
        wait = call.limiter.check_send(me.id, channel.id)
        if wait:
            raise RpcError(420, f"FLOOD_WAIT_{wait}")
        msg = call.world.post(
            channel, sender_id=me.id, text=text, entities=entities, random_id=request.random_id
        )
    updates: list[types.TypeUpdate] = []
    if request.random_id is not None:
        updates.append(types.UpdateMessageID(id=msg.id, random_id=request.random_id))
    updates.append(
        types.UpdateNewChannelMessage(
            message=render.message(me.id, channel, msg), pts=msg.pts, pts_count=1
        )
    )
    return types.Updates(
        updates=updates,
        users=[render.user(call.world, me.id, me)],
        chats=[render.channel(call.world, me.id, channel)],
        date=msg.date,
        seq=0,
    )
