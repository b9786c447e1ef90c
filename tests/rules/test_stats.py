"""Stats arithmetic: a day's row counts the posts dated in that day (in the configured
zone) and sums their views; the first collection of a channel only starts following."""

from __future__ import annotations

from datetime import timedelta

from botmgr.tasks.names import COLLECT_CHANNEL_STATS
from botmgr.telegram.gateway import FloodWait
from tests.rules.conftest import DAY, World, at


async def test_a_day_counts_its_own_posts_and_their_views(world: World) -> None:
    bot, token = await world.bot()
    channel = world.fake.add_channel(subscribers=321)
    world.fake.grant(channel, token)
    await world.binding(bot, channel)
    first = await world.collect()
    assert (first.started_following, first.collected) == (1, 0)
    assert await world.stats_rows() == []  # no row of zeros for a day it could not see
    world.fake.publish(channel, "before", date=at(DAY - timedelta(days=1), 23), views=1000)
    world.fake.publish(channel, "a", date=at(DAY, 0), views=10)
    world.fake.publish(channel, "b", date=at(DAY, 23), views=32)
    world.fake.publish(channel, "after", date=at(DAY + timedelta(days=1), 0), views=5000)
    report = await world.collect()
    assert report.collected == 1
    [row] = await world.stats_rows()
    assert (row.day, row.posts, row.views, row.subscribers) == (DAY, 2, 42, 321)
    channel.messages[1].views = 50  # views grow; collecting the day again replaces its row
    await world.collect()
    [row] = await world.stats_rows()
    assert (row.posts, row.views) == (2, 82)


async def test_the_day_is_the_configured_zones(world: World) -> None:
    bot, token = await world.bot()
    channel = world.fake.add_channel()
    world.fake.grant(channel, token)
    await world.binding(bot, channel)
    await world.collect(timezone="Asia/Tokyo")
    world.fake.publish(channel, "x", date=at(DAY - timedelta(days=1), 16), views=3)  # 01:00 JST
    world.fake.publish(channel, "y", date=at(DAY, 16), views=4)  # the next day in Tokyo
    await world.collect(timezone="Asia/Tokyo")
    [row] = await world.stats_rows()
    assert (row.posts, row.views) == (1, 3)


async def test_a_flood_wait_postpones_that_bots_channels_to_a_later_job(world: World) -> None:
    bot, token = await world.bot()
    for _ in range(3):
        channel = world.fake.add_channel()
        world.fake.grant(channel, token)
        await world.binding(bot, channel)
    world.fake.fail("channel_feed", FloodWait(45))
    report = await world.collect()
    assert len(report.postponed) == 3 and {s for _, s in report.postponed} == {45}
    # A 45 s wait is longer than a countdown: stored for the reconciler, not sent now.
    assert not [j for j in world.publisher.sent if j.name == COLLECT_CHANNEL_STATS]
    jobs = await world.deferred()
    assert len(jobs) == 3 and {j.name for j in jobs} == {COLLECT_CHANNEL_STATS}
    assert {j.kwargs["day"] for j in jobs} == {DAY.isoformat()}
    # due in 45 s from when the share was postponed (created_at: the start of its transaction)
    assert all(44 < (j.due_at - j.created_at).total_seconds() < 60 for j in jobs)
