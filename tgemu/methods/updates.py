"""updates.*: the bot's own update state (qts: membership changes) and channel streams (pts)."""

from __future__ import annotations

import time

from telethon.tl import functions, types

from tgemu.methods import peers, render
from tgemu.methods.base import Call, method
from tgemu.rpc import RpcError
from tgemu.world.models import BotState, ParticipantUpdate

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
    if request.pts <= 0:
        raise RpcError(400, "PERSISTENT_TIMESTAMP_EMPTY")
    me = call.me.id
    chats = [render.channel(call.world, me, channel)]
    if request.pts >= channel.pts:
        return types.updates.ChannelDifferenceEmpty(pts=channel.pts, final=True)
    limit = max(1, min(request.limit or 100, 100_000))
    # message ids and pts grow together, so the dict's insertion order is pts order
    newer = [m for m in channel.messages.values() if m.pts > request.pts]
    batch = newer[:limit]
    final = len(batch) == len(newer)
    return types.updates.ChannelDifference(
        pts=channel.pts if final else batch[-1].pts,
        new_messages=[render.message(me, channel, m) for m in batch],
        other_updates=[],
        chats=chats,
        users=[],
        final=final or None,
    )
