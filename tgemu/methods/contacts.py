"""contacts.resolveUsername: public @names to peers."""

from __future__ import annotations

from telethon.tl import functions, types

from tgemu.methods import render
from tgemu.methods.base import Call, method
from tgemu.rpc import RpcError
from tgemu.world import Channel
from tgemu.world.world import USERNAME_RE


@method(functions.contacts.ResolveUsernameRequest)
def resolve_username(
    call: Call, request: functions.contacts.ResolveUsernameRequest
) -> types.contacts.ResolvedPeer:
    name = request.username.removeprefix("@")
    if not USERNAME_RE.fullmatch(name):
        raise RpcError(400, "USERNAME_INVALID")
    wait = call.floods.check_resolve(call.me.id)
    if wait:
        raise RpcError(420, f"FLOOD_WAIT_{wait}")
    found = call.world.resolve_username(name)
    if found is None:
        raise RpcError(400, "USERNAME_NOT_OCCUPIED")
    me = call.me.id
    if isinstance(found, Channel):
        return types.contacts.ResolvedPeer(
            peer=types.PeerChannel(found.id),
            chats=[render.channel(call.world, me, found)],
            users=[],
        )
    return types.contacts.ResolvedPeer(
        peer=types.PeerUser(found.id), chats=[], users=[render.user(call.world, me, found)]
    )
