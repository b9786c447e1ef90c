"""Many real Telethon clients at once, and reconnecting with a saved StringSession."""

from __future__ import annotations

import asyncio
import statistics
import time

from telethon.tl import functions

from tests.harness.tgemu import TgEmu

CLIENTS = 200


async def test_200_concurrent_bots_each_post_to_their_own_channel(tgemu: TgEmu) -> None:
    pairs = []
    for i in range(CLIENTS):
        bot = tgemu.create_bot(tgemu.unique(f"load{i}") + "_bot")
        channel = tgemu.create_channel(f"Load {i}")
        tgemu.grant_admin(channel["id"], bot["id"])
        pairs.append((bot, channel))
    post_times: list[float] = []

    async def one(bot: dict, channel: dict) -> int:
        client = tgemu.telethon_client()
        await client.connect()
        try:
            await tgemu.sign_in(client, bot["token"])
            entity = await client.get_entity(channel["bot_api_id"])
            started = time.monotonic()
            sent = await client.send_message(entity, f"hello from {bot['username']}")
            post_times.append(time.monotonic() - started)
            return sent.id
        finally:
            await client.disconnect()

    started = time.monotonic()
    ids = await asyncio.wait_for(asyncio.gather(*(one(b, c) for b, c in pairs)), timeout=90)
    elapsed = time.monotonic() - started
    assert ids == [1] * CLIENTS
    for bot, channel in pairs[:: CLIENTS // 10]:
        (message,) = tgemu.messages(channel["id"])
        assert message["sender_id"] == bot["id"]
    print(
        f"\n{CLIENTS} bots: connect+login+post in {elapsed:.1f}s, "
        f"post p50={statistics.median(post_times) * 1000:.0f}ms "
        f"max={max(post_times) * 1000:.0f}ms"
    )
    assert max(post_times) < 10, "a post stalled behind other clients"


async def test_saved_string_session_reconnects_fast_without_a_second_login(tgemu: TgEmu) -> None:
    bot = tgemu.create_bot(tgemu.unique("resume") + "_bot")
    client = tgemu.telethon_client()
    await client.connect()
    await tgemu.sign_in(client, bot["token"])
    saved = client.session.save()
    await client.disconnect()

    timings = []
    for _ in range(5):
        started = time.monotonic()
        again = tgemu.telethon_client(saved)
        await again.connect()
        state = await again(functions.updates.GetStateRequest())  # an authorized-only call
        timings.append(time.monotonic() - started)
        me = await again.get_me()
        await again.disconnect()
        assert state.pts >= 1 and me.id == bot["id"]
    print(
        f"\nreconnect with StringSession: median {statistics.median(timings) * 1000:.1f}ms "
        f"max {max(timings) * 1000:.1f}ms"
    )
    assert statistics.median(timings) < 0.1
    assert tgemu.metrics()["logins"][str(bot["id"])] == 1
