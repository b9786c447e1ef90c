"""A database that does not answer in time inside a fleet job (a pool checkout past its
timeout, here a real one: a pool of one connection that the test holds) postpones only
the bot's share that met it, like a FLOOD_WAIT share: the other bots' answers are
written, the job does not fail, and the share is enqueued again after the policy's
delay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from botmgr.channels import sweep
from botmgr.db import SessionGate, make_sessionmaker
from botmgr.models import Binding, BindingStatus, Channel
from botmgr.stats import collect
from botmgr.tasks.names import CHECK_BINDINGS, COLLECT_CHANNEL_STATS
from tests.rules.conftest import DAY, World

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def one_connection(service_db: str) -> AsyncIterator[AsyncEngine]:
    """An engine whose pool has one connection and gives up on a checkout after 0.2 s."""
    engine = create_async_engine(service_db, pool_size=1, max_overflow=0, pool_timeout=0.2)
    yield engine
    await engine.dispose()


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    for _ in range(500):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


def stall_after(
    world: World,
    method: str,
    bot_id: int,
    ready: Callable[[], Awaitable[bool]],
    engine: AsyncEngine,
) -> AsyncExitStack:
    """``method`` of the fake, the first time ``bot_id`` calls it: once ``ready``, take
    the pool's only connection (kept until the returned stack closes), then answer as
    usual. Later calls are not stalled."""
    original = getattr(world.fake, method)
    held = AsyncExitStack()

    async def stalling(bot: Any, *args: Any, **kwargs: Any) -> Any:
        if bot.bot_id == bot_id:
            setattr(world.fake, method, original)
            await until(ready)
            await held.enter_async_context(engine.connect())
        return await original(bot, *args, **kwargs)

    setattr(world.fake, method, stalling)
    return held


async def test_a_pool_timeout_postpones_only_that_bots_share_of_the_sweep(
    world: World, one_connection: AsyncEngine
) -> None:
    bots = []
    for _ in range(2):
        bot, token = await world.bot()
        channel = world.fake.add_channel()
        world.fake.grant(channel, token)
        bots.append((bot, await world.binding(bot, channel)))
    (_, calm_binding), (stalled, stalled_binding) = bots

    async def calm_written() -> bool:
        return (await world.get(Binding, calm_binding.id)).last_checked_at is not None

    held = stall_after(world, "get_rights", stalled.id, calm_written, one_connection)
    async with held, world.unit() as unit:
        report = await sweep.sweep(
            unit,
            SessionGate(make_sessionmaker(one_connection), 4),
            gateway=world.fake,
            cipher=world.cipher,
            policy=world.policy,
            statuses=(BindingStatus.active,),
        )
    assert report.checked == 1 and report.postponed == [([stalled_binding.id], 5)]
    assert (await world.get(Binding, stalled_binding.id)).last_checked_at is None
    [job] = [j for j in world.publisher.sent if j.name == CHECK_BINDINGS]
    assert (job.args, job.countdown) == ([[stalled_binding.id]], 5)
    # The postponed share, run later with the database back, checks it.
    again = await world.sweep(binding_ids=[stalled_binding.id])
    assert again.checked == 1 and again.postponed == []


async def test_a_pool_timeout_postpones_only_that_bots_channels_of_the_collection(
    world: World, one_connection: AsyncEngine
) -> None:
    channels = []
    for _ in range(2):
        bot, token = await world.bot()
        channel = world.fake.add_channel()
        world.fake.grant(channel, token)
        binding = await world.binding(bot, channel)
        channels.append((bot, binding.channel_id))
    (_, calm_channel), (stalled, stalled_channel) = channels

    async def calm_followed() -> bool:
        return (await world.get(Channel, calm_channel)).feed_pts is not None

    held = stall_after(world, "channel_feed", stalled.id, calm_followed, one_connection)
    async with held, world.unit() as unit:
        report = await collect.collect(
            unit,
            SessionGate(make_sessionmaker(one_connection), 4),
            gateway=world.fake,
            cipher=world.cipher,
            policy=world.policy,
            timezone="UTC",
            day=DAY,
        )
    assert report.started_following == 1 and report.postponed == [(stalled_channel, 5)]
    async with world.sessionmaker() as session:
        followed = await session.scalar(
            select(Channel.feed_pts).where(Channel.id == stalled_channel)
        )
    assert followed is None
    [job] = [j for j in world.publisher.sent if j.name == COLLECT_CHANNEL_STATS]
    assert (job.args, job.countdown, job.kwargs) == ([stalled_channel], 5, {"day": DAY.isoformat()})
