"""What a bot may do to channel posts after publishing them: messages.editMessage,
channels.deleteMessages, messages.updatePinnedMessage. Each moves the channel's pts
(updateEditChannelMessage / updateDeleteChannelMessages / updatePinnedChannelMessages
in its difference), unless ``stream_edits`` is switched off.

Rights (Bot API ChatAdministratorRights): ``can_post_messages`` — "can post messages in
the channel"; ``can_edit_messages`` — "can edit messages of other users and can pin
messages; for channels only"; ``can_delete_messages`` — "can delete messages of other
users". So, for a bot admin of a channel (the creator may do everything):
- edit: its own post with post_messages or edit_messages; another's with edit_messages,
  else 403 MESSAGE_AUTHOR_REQUIRED ("Message author required"); no rights at all →
  CHAT_ADMIN_REQUIRED. No time limit by default: "in channels there's no longer any
  time limit for messages edits" (github.com/telegramdesktop/tdesktop issue 2389,
  2021); the Bot API limits only business messages to 48 hours. ``PUT /config
  {"edit_time_limit": S}`` imposes one (MESSAGE_EDIT_TIME_EXPIRED) for tests.
  A missing id → MESSAGE_ID_INVALID; an edit that changes nothing → MESSAGE_NOT_MODIFIED;
  an edit without reply_markup removes the buttons, as Telegram does (Bot API users
  report it: TelegramBots/Telegram.Bot issue 402, go-telegram-bot-api issue 158).
- delete (Bot API deleteMessage): "A message can only be deleted if it was sent less
  than 48 hours ago" (bots; confirmed for channel posts in grammyjs/types PR 4);
  "Bots granted can_post_messages permissions can delete outgoing messages in
  channels"; "If the bot has can_delete_messages permission in a supergroup or a
  channel, it can delete any message there". A refused message refuses the whole call:
  403 MESSAGE_DELETE_FORBIDDEN; ids that are not (or no longer) there are skipped.
  ``PUT /config {"delete_time_limit": S}`` changes the 48 hours (0: none).
- pin (Bot API pinChatMessage): the bot "must have the … 'can_edit_messages'
  administrator right in a channel", else CHAT_ADMIN_REQUIRED; pinning what is pinned
  (or unpinning what is not) → CHAT_NOT_MODIFIED ("The pinned message wasn't modified",
  the method's error list). Assumption: no service message is posted for a pin.
"""

from __future__ import annotations

import time

from telethon.tl import functions, types

from tgemu.methods import files, markup, peers, posting, render
from tgemu.methods.base import Call, method
from tgemu.rpc import RpcError
from tgemu.world import Channel, Member, Message


def _has(member: Member, right: str) -> bool:
    return member.creator or bool(member.admin_rights and member.admin_rights.get(right))


def _is_admin(member: Member | None) -> bool:
    return member is not None and (member.creator or member.admin_rights is not None)


def _message(channel: Channel, message_id: int) -> Message:
    msg = channel.messages.get(message_id)
    if msg is None:
        raise RpcError(400, "MESSAGE_ID_INVALID")
    return msg


def _updates(call: Call, channel: Channel, update: types.TypeUpdate) -> types.Updates:
    me = call.me
    return types.Updates(
        updates=[update],
        users=[render.user(call.world, me.id, me)],
        chats=[render.channel(call.world, me.id, channel)],
        date=int(time.time()),
        seq=0,
    )


@method(functions.messages.EditMessageRequest)
def edit_message(call: Call, request: functions.messages.EditMessageRequest) -> types.Updates:
    channel, member = posting.member_of(call, request.peer)
    if not _is_admin(member):
        raise RpcError(400, "CHAT_ADMIN_REQUIRED")
    msg = _message(channel, request.id)
    if msg.sender_id == call.me.id:
        if not (_has(member, "post_messages") or _has(member, "edit_messages")):
            raise RpcError(400, "CHAT_ADMIN_REQUIRED")
    elif not _has(member, "edit_messages"):
        raise RpcError(403, "MESSAGE_AUTHOR_REQUIRED")
    limit = call.behaviour.edit_time_limit
    if limit and time.time() - msg.date > limit:
        raise RpcError(400, "MESSAGE_EDIT_TIME_EXPIRED")
    fields: dict = {"reply_markup": markup.parse(request.reply_markup)}
    if request.media is not None:
        if msg.media_id is None:
            raise RpcError(400, "MEDIA_PREV_INVALID")  # assumption: text stays text
        fields["media_id"] = files.resolve(call, request.media).id
    if request.message is not None:
        caption = msg.media_id is not None
        fields["entities"] = posting.checked_text(
            request.message, request.entities, caption=caption
        )
        fields["text"] = request.message
        fields["no_webpage"] = bool(request.no_webpage)
    if all(getattr(msg, k) == v for k, v in fields.items() if k != "no_webpage"):
        raise RpcError(400, "MESSAGE_NOT_MODIFIED")
    call.world.change(channel, msg, call.rules.stream_edits, **fields)
    update = types.UpdateEditChannelMessage(
        message=render.message(call.me.id, channel, msg, call.world),
        pts=channel.pts,
        pts_count=1,
    )
    return _updates(call, channel, update)


@method(functions.channels.DeleteMessagesRequest)
def delete_messages(
    call: Call, request: functions.channels.DeleteMessagesRequest
) -> types.messages.AffectedMessages:
    channel = peers.visible_channel(call, request.channel)
    member = peers.membership(call, channel)
    if member is None or not _is_admin(member):
        raise RpcError(400, "CHAT_ADMIN_REQUIRED")
    if not request.id:
        raise RpcError(400, "MESSAGE_IDS_EMPTY")
    found = [m for i in dict.fromkeys(request.id) if (m := channel.messages.get(i))]
    limit = call.behaviour.delete_time_limit
    for msg in found:
        own = msg.sender_id == call.me.id
        allowed = _has(member, "delete_messages") or (own and _has(member, "post_messages"))
        too_old = bool(limit) and not member.creator and time.time() - msg.date > limit
        if not allowed or too_old:
            raise RpcError(403, "MESSAGE_DELETE_FORBIDDEN")
    if not found:
        return types.messages.AffectedMessages(pts=channel.pts, pts_count=0)
    stream = call.rules.stream_edits
    call.world.delete_messages(channel.id, [m.id for m in found], stream=stream)
    return types.messages.AffectedMessages(pts=channel.pts, pts_count=len(found) if stream else 0)


@method(functions.messages.UpdatePinnedMessageRequest)
def update_pinned_message(
    call: Call, request: functions.messages.UpdatePinnedMessageRequest
) -> types.Updates:
    channel, member = posting.member_of(call, request.peer)
    if not _has(member, "edit_messages"):
        raise RpcError(400, "CHAT_ADMIN_REQUIRED")
    msg = _message(channel, request.id)
    pinned = not request.unpin
    if msg.pinned == pinned:
        raise RpcError(400, "CHAT_NOT_MODIFIED")
    call.world.pin(channel.id, msg.id, pinned=pinned, stream=call.rules.stream_edits)
    if pinned:
        msg.pin_silent = bool(request.silent)
    update = types.UpdatePinnedChannelMessages(
        channel_id=channel.id,
        messages=[msg.id],
        pts=channel.pts,
        pts_count=1,
        pinned=pinned or None,
    )
    return _updates(call, channel, update)
