"""channels.*: what a bot may learn about a channel: itself, its own membership, posts by id."""

from __future__ import annotations

from telethon.tl import functions, types

from tgemu.methods import peers, render
from tgemu.methods.base import Call, method
from tgemu.rpc import RpcError

MAX_MESSAGE_IDS = 100


@method(functions.channels.GetChannelsRequest)
def get_channels(
    call: Call, request: functions.channels.GetChannelsRequest
) -> types.messages.Chats:
    me = call.me.id
    chats = []
    for ref in request.id:
        record = peers.channel(call, ref)
        chats.append(render.channel(call.world, me, record))
    return types.messages.Chats(chats=chats)


@method(functions.channels.GetFullChannelRequest)
def get_full_channel(
    call: Call, request: functions.channels.GetFullChannelRequest
) -> types.messages.ChatFull:
    record = peers.visible_channel(call, request.channel)
    member = peers.membership(call, record)
    is_admin = member is not None and (member.creator or member.admin_rights is not None)
    admins = sum(1 for m in record.members.values() if m.creator or m.admin_rights is not None)
    full = types.ChannelFull(
        id=record.id,
        about="",
        read_inbox_max_id=record.last_message_id,
        read_outbox_max_id=record.last_message_id,
        unread_count=0,
        chat_photo=types.PhotoEmpty(id=0),
        notify_settings=types.PeerNotifySettings(),
        bot_info=[],
        pts=record.pts,
        can_view_participants=is_admin or None,
        participants_count=len(record.members),
        admins_count=admins if is_admin else None,
        exported_invite=_invite(record) if is_admin else None,
    )
    return types.messages.ChatFull(
        full_chat=full, chats=[render.channel(call.world, call.me.id, record)], users=[]
    )


def _invite(record) -> types.ChatInviteExported:
    return types.ChatInviteExported(
        link=record.invite_link, admin_id=record.creator_id, date=record.date, permanent=True
    )


@method(functions.channels.GetParticipantRequest)
def get_participant(
    call: Call, request: functions.channels.GetParticipantRequest
) -> types.channels.ChannelParticipant:
    record = peers.visible_channel(call, request.channel)
    me = call.me.id
    target = peers.user(call, request.participant)
    if target is None:
        raise RpcError(400, "PARTICIPANT_ID_INVALID")
    mine = record.members.get(me)
    if target.id != me and not (mine and (mine.creator or mine.admin_rights is not None)):
        # In a broadcast channel only admins may look at other members.
        raise RpcError(400, "CHAT_ADMIN_REQUIRED")
    member = record.members.get(target.id)
    if member is None:
        raise RpcError(400, "USER_NOT_PARTICIPANT")
    user_ids = {target.id} | {i for i in (member.promoted_by, member.inviter_id) if i}
    return types.channels.ChannelParticipant(
        participant=render.participant(me, member),
        chats=[render.channel(call.world, me, record)],
        users=[
            render.user(call.world, me, call.world.users[i])
            for i in sorted(user_ids)
            if i in call.world.users
        ],
    )


@method(functions.channels.GetMessagesRequest)
def get_messages(
    call: Call, request: functions.channels.GetMessagesRequest
) -> types.messages.ChannelMessages:
    record = peers.visible_channel(call, request.channel)
    if not request.id:
        raise RpcError(400, "MESSAGE_IDS_EMPTY")
    if len(request.id) > MAX_MESSAGE_IDS:
        raise RpcError(400, "LIMIT_INVALID")
    me = call.me.id
    found = []
    for ref in request.id:
        wanted = ref.id if isinstance(ref, types.InputMessageID) else 0
        msg = record.messages.get(wanted)
        found.append(
            render.message(me, record, msg, call.world)
            if msg
            else render.missing_message(record, wanted)
        )
    return types.messages.ChannelMessages(
        pts=record.pts,
        count=len(found),
        messages=found,
        topics=[],
        chats=[render.channel(call.world, me, record)],
        users=[],
    )
