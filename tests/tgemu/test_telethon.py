"""The real Telethon client against a real tgemu process, over real MTProto."""

from __future__ import annotations

import asyncio
import time

import pytest
from telethon import TelegramClient, errors
from telethon.tl import functions, types

from tests.harness.tgemu import TgEmu
from tests.tgemu.helpers import bot_client, new_bot


async def own_rights(client: TelegramClient, channel) -> types.ChatAdminRights | None:
    result = await client(functions.channels.GetParticipantRequest(channel, types.InputPeerSelf()))
    return getattr(result.participant, "admin_rights", None)


async def test_bot_posts_with_entities_and_reads_views(tgemu: TgEmu) -> None:
    bot = new_bot(tgemu)
    made = tgemu.create_channel("Public news", tgemu.unique("news"))
    async with bot_client(tgemu, bot["token"]) as client:
        me = await client.get_me()
        assert (me.id, me.bot, me.username) == (bot["id"], True, bot["username"])
        channel = await client.get_entity(f"@{made['username']}")
        assert channel.id == made["id"] and channel.broadcast
        with pytest.raises(errors.UserNotParticipantError):
            await own_rights(client, channel)
        with pytest.raises(errors.ChatWriteForbiddenError):
            await client.send_message(channel, "not yet")

        tgemu.grant_admin(made["id"], bot["id"], post_messages=True, edit_messages=True)
        rights = await own_rights(client, channel)
        assert rights.post_messages and rights.edit_messages and not rights.delete_messages

        entities = [
            types.MessageEntityBold(0, 5),
            types.MessageEntityItalic(6, 2),
            types.MessageEntityTextUrl(9, 4, "https://example.org/"),
            types.MessageEntityCode(14, 2),
        ]
        text = "Hello 🌍 link ok"  # the emoji is two UTF-16 units
        sent = await client.send_message(channel, text, formatting_entities=entities)
        assert sent is not None and sent.id >= 1
        stored = next(m for m in tgemu.messages(made["id"]) if m["id"] == sent.id)
        assert stored["text"] == text and stored["sender_id"] == bot["id"]
        assert stored["entities"] == [e.to_dict() for e in entities]
        assert stored["random_id"] is not None

        tgemu.set_views(made["id"], sent.id, 321)
        read = await client.get_messages(channel, ids=[sent.id, sent.id + 1000])
        assert read[0].views == 321 and read[0].entities == entities
        assert read[1] is None  # MessageEmpty for a missing id

        full = await client(functions.channels.GetFullChannelRequest(channel))
        assert full.full_chat.participants_count == 2  # creator + the bot


async def test_refusals_duplicates_and_length(tgemu: TgEmu) -> None:
    bot = new_bot(tgemu)
    made = tgemu.create_channel("Rules", tgemu.unique("rules"))
    tgemu.grant_admin(made["id"], bot["id"])
    async with bot_client(tgemu, bot["token"]) as client:
        channel = await client.get_entity(made["bot_api_id"])  # -100 id, access_hash 0 as a member
        with pytest.raises(errors.BotMethodInvalidError):
            await client(functions.messages.GetHistoryRequest(channel, 0, None, 0, 10, 0, 0, 0))
        with pytest.raises(errors.BotMethodInvalidError):
            await client(functions.channels.JoinChannelRequest(channel))
        with pytest.raises(errors.BotMethodInvalidError):
            await client(functions.messages.CheckChatInviteRequest("abcdef"))
        with pytest.raises(errors.RPCError, match=r"METHOD_NOT_IMPLEMENTED_account\.getPassword"):
            await client(functions.account.GetPasswordRequest())

        send = functions.messages.SendMessageRequest(channel, "once", random_id=777_000_1)
        await client(send)
        with pytest.raises(errors.RandomIdDuplicateError):
            await client(
                functions.messages.SendMessageRequest(channel, "twice", random_id=777_000_1)
            )
        assert [m["text"] for m in tgemu.messages(made["id"])] == ["once"]
        with pytest.raises(errors.MessageTooLongError):
            await client.send_message(channel, "x" * 4097)
        with pytest.raises(errors.UsernameNotOccupiedError):
            await client(functions.contacts.ResolveUsernameRequest(tgemu.unique("nobody")))
        with pytest.raises(errors.UsernameInvalidError):
            await client(functions.contacts.ResolveUsernameRequest("a b"))


async def test_flood_wait_past_the_channel_limit(tgemu: TgEmu) -> None:
    before = tgemu.config()
    tgemu.config(rate_limits={"enabled": True, "channel_burst": 3, "channel_per_minute": 20})
    try:
        bot = new_bot(tgemu)
        made = tgemu.create_channel("Busy", tgemu.unique("busy"))
        tgemu.grant_admin(made["id"], bot["id"])
        floods = tgemu.metrics()["flood_waits"]
        async with bot_client(tgemu, bot["token"]) as client:
            channel = await client.get_entity(made["bot_api_id"])
            for i in range(3):
                await client.send_message(channel, f"burst {i}")
            with pytest.raises(errors.FloodWaitError) as info:
                await client.send_message(channel, "one too many")
            assert 1 <= info.value.seconds <= 3
        assert tgemu.metrics()["flood_waits"] == floods + 1
        assert len(tgemu.messages(made["id"])) == 3
    finally:
        tgemu.config(rate_limits=before["limits"])


async def test_revoked_token(tgemu: TgEmu) -> None:
    bot = new_bot(tgemu)
    old_session = tgemu.telethon_client()
    await old_session.connect()
    try:
        await tgemu.sign_in(old_session, bot["token"])
        new_token = tgemu.revoke_token(bot["id"])
        with pytest.raises(errors.AuthKeyUnregisteredError):
            await old_session(functions.updates.GetStateRequest())
        assert await old_session.get_me() is None  # Telethon's get_me hides 401s
    finally:
        await old_session.disconnect()
    fresh = tgemu.telethon_client()
    await fresh.connect()
    try:
        with pytest.raises(errors.AccessTokenInvalidError):
            await tgemu.sign_in(fresh, bot["token"])
        me = await tgemu.sign_in(fresh, new_token)
        assert me.id == bot["id"]
    finally:
        await fresh.disconnect()


async def test_promotion_update_and_channel_difference(tgemu: TgEmu) -> None:
    bot = new_bot(tgemu)
    made = tgemu.create_channel("Private")  # no username: only an invite link
    async with bot_client(tgemu, bot["token"]) as client:
        with pytest.raises(errors.ChannelInvalidError):
            await client(functions.channels.GetChannelsRequest([types.InputChannel(made["id"], 0)]))
        state = await client(functions.updates.GetStateRequest())
        tgemu.grant_admin(made["id"], bot["id"])
        diff = await client(
            functions.updates.GetDifferenceRequest(state.pts, state.date, state.qts)
        )
        update = next(
            u for u in diff.other_updates if isinstance(u, types.UpdateChannelParticipant)
        )
        assert update.channel_id == made["id"] and update.user_id == bot["id"]
        assert update.new_participant.admin_rights.post_messages
        channel = next(c for c in diff.chats if c.id == made["id"])
        start = (await client(functions.channels.GetFullChannelRequest(channel))).full_chat.pts

        human = tgemu.create_user("Other admin")
        tgemu.grant_admin(made["id"], human["id"])
        tgemu.post(made["id"], "by the owner")
        tgemu.post(made["id"], "by another admin", sender_id=human["id"])
        await client.send_message(channel, "by the bot")
        result = await client(
            functions.updates.GetChannelDifferenceRequest(
                channel, types.ChannelMessagesFilterEmpty(), pts=start, limit=100
            )
        )
        assert [m.message for m in result.new_messages] == [
            "by the owner",
            "by another admin",
            "by the bot",
        ]
        assert result.final

        tgemu.revoke_admin(made["id"], bot["id"])
        with pytest.raises(errors.ChatWriteForbiddenError):
            await client.send_message(channel, "demoted")
        tgemu.remove_member(made["id"], bot["id"])
        with pytest.raises(errors.ChannelPrivateError):
            await client.send_message(channel, "removed")
        diff = await client(
            functions.updates.GetDifferenceRequest(diff.state.pts, diff.state.date, diff.state.qts)
        )
        assert [u.new_participant for u in diff.other_updates][-1] is None


async def test_faults_and_latency(tgemu: TgEmu) -> None:
    bot = new_bot(tgemu)
    made = tgemu.create_channel("Faulty", tgemu.unique("faulty"))
    tgemu.grant_admin(made["id"], bot["id"])
    async with bot_client(tgemu, bot["token"]) as client:
        channel = await client.get_entity(made["bot_api_id"])
        tgemu.add_fault("messages.sendMessage", "FLOOD_WAIT_5", times=1, bot_id=bot["id"])
        tgemu.add_fault("messages.sendMessage", "INTERNAL", times=1, bot_id=bot["id"] + 10**6)
        with pytest.raises(errors.FloodWaitError) as info:
            await client.send_message(channel, "a")
        assert info.value.seconds == 5
        tgemu.add_fault("messages.SendMessageRequest", "INTERNAL", times=1, bot_id=bot["id"])
        with pytest.raises(errors.ServerError):
            await client.send_message(channel, "b")
        tgemu.clear_faults()
        assert (await client.send_message(channel, "c")) is not None

        tgemu.config(latency_ms=1000)
        try:
            started = time.monotonic()
            sending = asyncio.create_task(client.send_message(channel, "slow"))
            # stored while the client still waits for the answer
            while tgemu.messages(made["id"])[-1]["text"] != "slow":
                assert time.monotonic() - started < 0.9, "not stored before the answer"
                await asyncio.sleep(0.02)
            assert not sending.done()
            await sending
            assert time.monotonic() - started >= 1.0
        finally:
            tgemu.config(latency_ms=0)
        tgemu.delete_channel(made["id"])
        with pytest.raises(errors.ChannelPrivateError):
            await client.send_message(channel, "gone")
