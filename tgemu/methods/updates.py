"""updates.*: the bot's own update state (qts: membership changes) and channel streams (pts)."""

from __future__ import annotations

import time

from telethon.tl import functions, types

from tgemu.methods import peers, render
from tgemu.methods.base import MAX_CHANNEL_DIFF_LIMIT, Call, method
from tgemu.rpc import RpcError
from tgemu.world import World
from tgemu.world.models import BotState, Channel, ChannelEvent, ParticipantUpdate

DIFFERENCE_LIMIT = 1000


def _state(bot: BotState) -> types.updates.State:
    return types.updates.State(
        pts=bot.pts, qts=bot.qts, date=int(time.time()), seq=bot.seq, unread_count=0
    )


@method(functions.updates.GetStateRequest)
def get_state(call: Call, request: functions.updates.GetStateRequest) -> types.updates.State:
    return _state(call.world.bot_state(call.me.id))


@method(functions.updates.GetDifferenceRequest)
def get_difference(
    call: Call, request: functions.updates.GetDifferenceRequest
) -> types.updates.TypeDifference:
    state = call.world.bot_state(call.me.id)
    behaviour = call.behaviour
    call.world.forget_updates(
        call.me.id,
        confirmed_qts=request.qts if behaviour.qts_drop_confirmed else 0,
        before=int(time.time()) - behaviour.qts_retention_seconds,
    )
    pending = [u for u in state.updates if u.qts > request.qts]
    if not pending:
        return types.updates.DifferenceEmpty(date=int(time.time()), seq=state.seq)
    batch = pending[:DIFFERENCE_LIMIT]
    me = call.me.id
    world = call.world
    channel_ids = {u.channel_id for u in batch}
    user_ids = {me} | {u.actor_id for u in batch}
    chats = [render.channel(world, me, world.channels[cid]) for cid in sorted(channel_ids)]
    users = [
        render.user(world, me, world.users[uid]) for uid in sorted(user_ids) if uid in world.users
    ]
    other = [_participant_update(me, u) for u in batch]
    if len(pending) > len(batch):
        intermediate = _state(state)
        intermediate.qts = batch[-1].qts
        return types.updates.DifferenceSlice(
            new_messages=[],
            new_encrypted_messages=[],
            other_updates=other,
            chats=chats,
            users=users,
            intermediate_state=intermediate,
        )
    return types.updates.Difference(
        new_messages=[],
        new_encrypted_messages=[],
        other_updates=other,
        chats=chats,
        users=users,
        state=_state(state),
    )


def _participant_update(me: int, update: ParticipantUpdate) -> types.UpdateChannelParticipant:
    return types.UpdateChannelParticipant(
        channel_id=update.channel_id,
        date=update.date,
        actor_id=update.actor_id,
        user_id=update.user_id,
        qts=update.qts,
        prev_participant=render.participant(me, update.prev),
        new_participant=render.participant(me, update.new),
    )


@method(functions.updates.GetChannelDifferenceRequest)
def get_channel_difference(
    call: Call, request: functions.updates.GetChannelDifferenceRequest
) -> types.updates.TypeChannelDifference:
    channel = peers.visible_channel(call, request.channel)
    rules = call.rules
    if request.pts <= 0:
        raise RpcError(400, "PERSISTENT_TIMESTAMP_EMPTY")
    if rules.limit_invalid and request.limit > MAX_CHANNEL_DIFF_LIMIT:
        # method/updates.getChannelDifference: "limit: How many updates to fetch, max 100000"
        raise RpcError(400, "LIMIT_INVALID")
    if rules.pts_invalid and request.pts > channel.pts:
        # A position the channel never reached (e.g. a stored pts of a recreated channel):
        # 400 PERSISTENT_TIMESTAMP_INVALID, listed on the method page.
        raise RpcError(400, "PERSISTENT_TIMESTAMP_INVALID")
    me = call.me.id
    chats = [render.channel(call.world, me, channel)]
    if request.pts >= channel.pts:
        return types.updates.ChannelDifferenceEmpty(pts=channel.pts, final=True)
    limit = max(1, min(request.limit or 100, MAX_CHANNEL_DIFF_LIMIT))
    if rules.too_long and request.pts + limit < channel.pts:
        return _too_long(call, channel, chats)
    return _difference(call.world, me, channel, chats, request.pts, limit)


def _too_long(call: Call, channel: Channel, chats: list) -> types.updates.ChannelDifferenceTooLong:
    """type/updates.ChannelDifference: "The provided pts + limit < remote pts … there are
    too many updates to be fetched" → the latest messages ("not starting from the passed
    pts, just the latest messages") and a dialog "containing the latest PTS that can be
    used to reset the channel state"; ``final`` is always set."""
    latest = list(channel.messages.values())[-max(0, call.rules.too_long_messages) :]
    top = channel.last_message_id
    dialog = types.Dialog(
        peer=types.PeerChannel(channel.id),
        top_message=top,
        read_inbox_max_id=top,
        read_outbox_max_id=top,
        unread_count=0,
        unread_mentions_count=0,
        unread_reactions_count=0,
        unread_poll_votes_count=0,
        notify_settings=types.PeerNotifySettings(),
        pts=channel.pts,
    )
    return types.updates.ChannelDifferenceTooLong(
        dialog=dialog,
        messages=[render.message(call.me.id, channel, m, call.world) for m in reversed(latest)],
        chats=chats,
        users=[],
        final=True,
    )


def _difference(
    world: World, me: int, channel: Channel, chats: list, pts: int, limit: int
) -> types.updates.ChannelDifference:
    """Every update after ``pts`` in pts order, at most ``limit`` pts worth of them (only
    reached with the TooLong rule off: then the answer is a slice, final unset)."""
    stop = pts + limit
    # message ids and pts grow together, so the dict's insertion order is pts order
    posts = [m for m in channel.messages.values() if pts < m.pts <= stop]
    events = [e for e in channel.events if pts < e.pts <= stop]
    final = stop >= channel.pts
    end = channel.pts if final else max([m.pts for m in posts] + [e.pts for e in events] + [pts])
    return types.updates.ChannelDifference(
        pts=end,
        new_messages=[render.message(me, channel, m, world) for m in posts],
        other_updates=[
            u for e in events if (u := _event_update(world, me, channel, e)) is not None
        ],
        chats=chats,
        users=[],
        final=final or None,
    )


def _event_update(
    world: World, me: int, channel: Channel, event: ChannelEvent
) -> types.TypeUpdate | None:
    if event.kind == "edit":
        message = channel.messages.get(event.message_ids[0])
        if message is None:  # deleted since: its deletion follows in the same difference
            return None
        return types.UpdateEditChannelMessage(
            message=render.message(me, channel, message, world),
            pts=event.pts,
            pts_count=event.pts_count,
        )
    if event.kind == "delete":
        return types.UpdateDeleteChannelMessages(
            channel_id=channel.id,
            messages=event.message_ids,
            pts=event.pts,
            pts_count=event.pts_count,
        )
    return types.UpdatePinnedChannelMessages(
        channel_id=channel.id,
        messages=event.message_ids,
        pts=event.pts,
        pts_count=event.pts_count,
        pinned=event.kind == "pin" or None,
    )
