"""The method layer driven with Telethon's own request classes, without the network."""

from __future__ import annotations

import pytest
from telethon.tl import functions, types

from tests.tgemu.helpers import Harness
from tgemu.rpc import RpcError

ImportBot = functions.auth.ImportBotAuthorizationRequest


async def login(h: Harness, username: str):
    bot = h.world.create_bot(username)
    ctx = h.ctx()
    auth = await h.call(ctx, ImportBot(flags=0, api_id=1, api_hash="x", bot_auth_token=bot.token))
    assert auth.user.id == bot.id and auth.user.is_self and auth.user.bot
    return bot, ctx


async def expect_error(h: Harness, ctx, request, code: int, message: str) -> None:
    with pytest.raises(RpcError) as info:
        await h.call(ctx, request)
    assert (info.value.code, info.value.message) == (code, message)


async def test_unauthorized_key_gets_401_and_bad_token_400() -> None:
    h = Harness()
    ctx = h.ctx()
    await expect_error(
        h,
        ctx,
        functions.users.GetUsersRequest([types.InputUserSelf()]),
        401,
        "AUTH_KEY_UNREGISTERED",
    )
    await expect_error(h, ctx, functions.updates.GetStateRequest(), 401, "AUTH_KEY_UNREGISTERED")
    config = await h.call(ctx, functions.help.GetConfigRequest())
    assert config.dc_options[0].port == h.dispatcher.server.port
    await expect_error(
        h,
        ctx,
        ImportBot(flags=0, api_id=1, api_hash="x", bot_auth_token="1:nope"),
        400,
        "ACCESS_TOKEN_INVALID",
    )


async def test_revoked_token_refused_and_old_key_unregistered() -> None:
    h = Harness()
    bot, ctx = await login(h, "revoke_me_bot")
    old_token = bot.token
    me = await h.call(ctx, functions.users.GetUsersRequest([types.InputUserSelf()]))
    assert me[0].id == bot.id
    h.world.revoke_token(bot.id)
    await expect_error(h, ctx, functions.updates.GetStateRequest(), 401, "AUTH_KEY_UNREGISTERED")
    await expect_error(
        h,
        h.ctx(),
        ImportBot(flags=0, api_id=1, api_hash="x", bot_auth_token=old_token),
        400,
        "ACCESS_TOKEN_INVALID",
    )
    assert h.dispatcher.metrics.logins[bot.id] == 1


async def test_resolve_rights_post_and_read_back() -> None:
    h = Harness()
    bot, ctx = await login(h, "poster_bot")
    channel = h.world.create_channel("News", "news_chan")
    resolved = await h.call(ctx, functions.contacts.ResolveUsernameRequest("news_chan"))
    chat = resolved.chats[0]
    assert chat.id == channel.id and chat.left and chat.access_hash
    ref = types.InputChannel(chat.id, chat.access_hash)
    me = types.InputPeerSelf()
    await expect_error(
        h, ctx, functions.channels.GetParticipantRequest(ref, me), 400, "USER_NOT_PARTICIPANT"
    )
    peer = types.InputPeerChannel(chat.id, chat.access_hash)
    await expect_error(
        h,
        ctx,
        functions.messages.SendMessageRequest(peer, "hi", random_id=1),
        403,
        "CHAT_WRITE_FORBIDDEN",
    )

    h.world.set_admin(channel.id, bot.id, {"post_messages": True, "edit_messages": True})
    part = await h.call(ctx, functions.channels.GetParticipantRequest(ref, me))
    admin = part.participant
    assert isinstance(admin, types.ChannelParticipantAdmin)
    assert admin.is_self and admin.inviter_id == channel.creator_id
    assert admin.admin_rights.post_messages and not admin.admin_rights.delete_messages
    bytes(part)  # serializable: is_self/inviter_id flags agree

    entities = [types.MessageEntityBold(0, 5), types.MessageEntityTextUrl(6, 5, "https://x.y")]
    sent = await h.call(
        ctx,
        functions.messages.SendMessageRequest(peer, "hello world", random_id=42, entities=entities),
    )
    msg_id, new = sent.updates
    assert msg_id.random_id == 42 and new.message.id == msg_id.id
    assert new.pts == channel.pts and new.pts_count == 1
    stored = channel.messages[msg_id.id]
    assert stored.entities == [e.to_dict() for e in entities] and stored.random_id == 42
    await expect_error(
        h,
        ctx,
        functions.messages.SendMessageRequest(peer, "again", random_id=42),
        500,
        "RANDOM_ID_DUPLICATE",
    )

    h.world.set_views(channel.id, msg_id.id, 77)
    got = await h.call(
        ctx,
        functions.channels.GetMessagesRequest(
            ref, [types.InputMessageID(msg_id.id), types.InputMessageID(999)]
        ),
    )
    assert got.messages[0].views == 77 and got.messages[0].entities == entities
    assert isinstance(got.messages[1], types.MessageEmpty) and got.messages[1].peer_id
    bytes(got)


async def test_access_hash_zero_only_for_members_and_private_channels_hidden() -> None:
    h = Harness()
    bot, ctx = await login(h, "hash_bot")
    private = h.world.create_channel("Secret")
    await expect_error(
        h,
        ctx,
        functions.channels.GetChannelsRequest([types.InputChannel(private.id, 0)]),
        400,
        "CHANNEL_INVALID",
    )
    await expect_error(
        h,
        ctx,
        functions.channels.GetChannelsRequest([types.InputChannel(private.id, 12345)]),
        400,
        "CHANNEL_INVALID",
    )
    h.world.add_member(private.id, bot.id)
    chats = await h.call(
        ctx, functions.channels.GetChannelsRequest([types.InputChannel(private.id, 0)])
    )
    assert chats.chats[0].access_hash == h.world.access_hash(bot.id, private.id)
    _, other_ctx = await login(h, "other_hash_bot")
    # a hash is per account: another bot cannot use this bot's hash
    await expect_error(
        h,
        other_ctx,
        functions.channels.GetChannelsRequest(
            [types.InputChannel(private.id, chats.chats[0].access_hash)]
        ),
        400,
        "CHANNEL_INVALID",
    )
    h.world.remove_member(private.id, bot.id)
    ref = types.InputChannel(private.id, chats.chats[0].access_hash)
    await expect_error(
        h, ctx, functions.channels.GetFullChannelRequest(ref), 400, "CHANNEL_PRIVATE"
    )


async def test_refused_and_unknown_methods() -> None:
    h = Harness()
    _, ctx = await login(h, "refused_bot")
    history = functions.messages.GetHistoryRequest(types.InputPeerSelf(), 0, None, 0, 10, 0, 0, 0)
    await expect_error(h, ctx, history, 400, "BOT_METHOD_INVALID")
    await expect_error(
        h,
        ctx,
        functions.channels.JoinChannelRequest(types.InputChannel(1, 1)),
        400,
        "BOT_METHOD_INVALID",
    )
    await expect_error(
        h, ctx, functions.messages.CheckChatInviteRequest("abc"), 400, "BOT_METHOD_INVALID"
    )
    await expect_error(
        h,
        ctx,
        functions.account.GetPasswordRequest(),
        400,
        "METHOD_NOT_IMPLEMENTED_account.getPassword",
    )


async def test_promotion_reaches_get_difference_and_channel_difference_shows_all_posts() -> None:
    h = Harness()
    bot, ctx = await login(h, "diff_bot")
    state = await h.call(ctx, functions.updates.GetStateRequest())
    empty = await h.call(
        ctx, functions.updates.GetDifferenceRequest(state.pts, state.date, state.qts)
    )
    assert isinstance(empty, types.updates.DifferenceEmpty)
    channel = h.world.create_channel("Private one")
    h.world.post(channel, sender_id=channel.creator_id, text="before", entities=[])
    h.world.set_admin(channel.id, bot.id, {"post_messages": True})
    diff = await h.call(
        ctx, functions.updates.GetDifferenceRequest(state.pts, state.date, state.qts)
    )
    (update,) = diff.other_updates
    assert isinstance(update, types.UpdateChannelParticipant)
    assert update.channel_id == channel.id and update.prev_participant is None
    assert isinstance(update.new_participant, types.ChannelParticipantAdmin)
    assert diff.chats[0].id == channel.id and diff.state.qts == update.qts
    bytes(diff)

    h.world.post(channel, sender_id=channel.creator_id, text="by a human", entities=[])
    ref = types.InputChannel(channel.id, diff.chats[0].access_hash)
    cdiff = await h.call(
        ctx,
        functions.updates.GetChannelDifferenceRequest(
            ref, types.ChannelMessagesFilterEmpty(), pts=1, limit=100
        ),
    )
    assert [m.message for m in cdiff.new_messages] == ["before", "by a human"]
    assert cdiff.pts == channel.pts and cdiff.final
    again = await h.call(
        ctx,
        functions.updates.GetChannelDifferenceRequest(
            ref, types.ChannelMessagesFilterEmpty(), pts=cdiff.pts, limit=100
        ),
    )
    assert isinstance(again, types.updates.ChannelDifferenceEmpty)
    sliced = await h.call(
        ctx,
        functions.updates.GetChannelDifferenceRequest(
            ref, types.ChannelMessagesFilterEmpty(), pts=1, limit=1
        ),
    )
    # pts + limit < the channel's pts: Telegram's TooLong, not a slice (see
    # test_channel_difference.py; slices only with PUT /config {"difference": {"too_long": false}})
    assert isinstance(sliced, types.updates.ChannelDifferenceTooLong)
    assert sliced.dialog.pts == channel.pts


async def test_flood_wait_and_faults() -> None:
    h = Harness(rate_limits=True)
    h.dispatcher.limiter.reconfigure(channel_burst=3, channel_per_minute=20)
    bot, ctx = await login(h, "flood_bot")
    channel = h.world.create_channel("Busy")
    h.world.set_admin(channel.id, bot.id, {"post_messages": True})
    peer = types.InputPeerChannel(channel.id, 0)
    for i in range(3):
        await h.call(ctx, functions.messages.SendMessageRequest(peer, f"m{i}", random_id=i + 1))
    with pytest.raises(RpcError) as info:
        await h.call(ctx, functions.messages.SendMessageRequest(peer, "m3", random_id=9))
    assert info.value.code == 420 and info.value.message in {"FLOOD_WAIT_2", "FLOOD_WAIT_3"}
    assert h.dispatcher.metrics.flood_waits == 1

    h.dispatcher.faults.add("channels.getFullChannel", "INTERNAL", times=1)  # other method
    h.dispatcher.faults.add("users.getUsers", "FLOOD_WAIT_7", times=2, bot_id=bot.id)
    get_me = functions.users.GetUsersRequest([types.InputUserSelf()])
    await expect_error(h, ctx, get_me, 420, "FLOOD_WAIT_7")
    await expect_error(h, ctx, get_me, 420, "FLOOD_WAIT_7")
    assert (await h.call(ctx, get_me))[0].id == bot.id
