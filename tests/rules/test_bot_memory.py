"""DbSessionStore as gateway.BotMemory, on real PostgreSQL: channel access hashes per bot
(and per Telegram bot), and "no login before T" that only ever moves later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from botmgr.bots.sessions import DbSessionStore
from botmgr.models import Bot
from botmgr.security import bot_account
from tests.rules.conftest import World


async def test_hashes_are_kept_per_bot_and_replaced(world: World) -> None:
    store = DbSessionStore(world.sessionmaker, world.cipher)
    a, _ = await world.bot()
    b, _ = await world.bot()
    await store.save_channel_hash(a.id, a.tg_id, 500, 1)
    await store.save_channel_hash(a.id, a.tg_id, 500, 2)  # learnt again: replaced
    await store.save_channel_hash(b.id, b.tg_id, 500, 3)
    assert await store.channel_hashes(a.id, a.tg_id) == {500: 2}
    assert await store.channel_hashes(a.id, a.tg_id + 1) == {}  # another Telegram bot
    await store.forget_channel_hash(a.id, 500)
    assert await store.channel_hashes(a.id, a.tg_id) == {}
    assert await store.channel_hashes(b.id, b.tg_id) == {500: 3}


async def test_a_login_flood_is_stored_on_the_bot_and_never_shortened(world: World) -> None:
    store = DbSessionStore(world.sessionmaker, world.cipher)
    bot, _ = await world.bot()
    later = datetime.now(UTC) + timedelta(hours=1)
    await store.login_flood(bot.id, later)
    await store.login_flood(bot.id, later - timedelta(minutes=30))
    row = await world.get(Bot, bot.id)
    assert row.login_not_before == later
    assert bot_account(row, world.cipher).login_not_before == later
