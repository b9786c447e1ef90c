"""Input peers → world records, with Telegram's access-hash and visibility rules."""

from __future__ import annotations

from telethon.tl import types

from tgemu.methods.base import Call
from tgemu.rpc import RpcError
from tgemu.world import Channel, Member, User


def channel(call: Call, ref: types.TypeInputChannel | types.TypeInputPeer) -> Channel:
    """A channel the caller named correctly.

    The access hash must be the caller's own; 0 is accepted only for a channel the caller
    belongs to (how Telethon asks about a bare ``-100…`` id).
    """
    if not isinstance(ref, types.InputChannel | types.InputPeerChannel):
        raise RpcError(400, "CHANNEL_INVALID")
    record = call.world.channel(ref.channel_id)
    if record is None:
        raise RpcError(400, "CHANNEL_INVALID")
    me = call.me.id
    if ref.access_hash == 0:
        if me not in record.members:
            raise RpcError(400, "CHANNEL_INVALID")
    elif ref.access_hash != call.world.access_hash(me, record.id):
        raise RpcError(400, "CHANNEL_INVALID")
    if record.deleted:
        raise RpcError(400, "CHANNEL_PRIVATE")
    return record


def visible_channel(call: Call, ref: types.TypeInputChannel | types.TypeInputPeer) -> Channel:
    """A channel whose content the caller may read: public, or one it belongs to."""
    record = channel(call, ref)
    if record.username is None and call.me.id not in record.members:
        raise RpcError(400, "CHANNEL_PRIVATE")
    return record


def membership(call: Call, record: Channel) -> Member | None:
    return record.members.get(call.me.id)


def user(call: Call, ref: types.TypeInputUser | types.TypeInputPeer) -> User | None:
    """The user named, or None when the reference is not valid for this caller."""
    me = call.me
    if isinstance(ref, types.InputUserSelf | types.InputPeerSelf):
        return me
    if isinstance(ref, types.InputUser | types.InputPeerUser):
        record = call.world.user(ref.user_id)
        if record is None:
            return None
        if record.id == me.id or ref.access_hash == call.world.access_hash(me.id, record.id):
            return record
    return None
