"""users.*: who am I, who is that."""

from __future__ import annotations

from telethon.tl import functions, types

from tgemu.methods import peers, render
from tgemu.methods.base import Call, method
from tgemu.rpc import RpcError


@method(functions.users.GetUsersRequest)
def get_users(call: Call, request: functions.users.GetUsersRequest) -> list[types.User]:
    found = (peers.user(call, ref) for ref in request.id)
    # Telegram leaves out users the caller cannot name rather than failing the call.
    return [render.user(call.world, call.me.id, u) for u in found if u is not None]


@method(functions.users.GetFullUserRequest)
def get_full_user(call: Call, request: functions.users.GetFullUserRequest) -> types.users.UserFull:
    target = peers.user(call, request.id)
    if target is None:
        raise RpcError(400, "USER_ID_INVALID")
    return types.users.UserFull(
        full_user=types.UserFull(
            id=target.id,
            settings=types.PeerSettings(),
            notify_settings=types.PeerNotifySettings(),
            common_chats_count=0,
        ),
        chats=[],
        users=[render.user(call.world, call.me.id, target)],
    )
