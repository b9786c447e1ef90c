"""Stats over a stream with gaps, edits and deletions: a gap past the difference limit is
read back by id; one that cannot be is an explicit ``complete = false`` on that day's
row (kept when the day is collected again, gone the next day); edits and pins are no
posts; a deleted post no longer counts; PERSISTENT_TIMESTAMP_INVALID restarts following."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from botmgr.models import Channel, ChannelStats
from botmgr.telegram.fake import FakeChannel
from tests.rules.conftest import DAY, World, at

NEXT = DAY + timedelta(days=1)


async def _followed(world: World) -> FakeChannel:
    bot, token = await world.bot()
    channel = world.fake.add_channel(subscribers=5)
    world.fake.grant(channel, token)
    await world.binding(bot, channel)
    await world.collect()  # starts following
    return channel


def _by_day(rows: list[ChannelStats]) -> dict:
    return {r.day: (r.posts, r.views, r.complete) for r in rows}


async def test_a_gap_of_more_than_100000_updates_is_read_back_by_message_id(world: World) -> None:
    channel = await _followed(world)
    known = world.fake.publish(channel, "known", date=at(DAY, 1), views=1)
    await world.collect()
    for hour in range(2, 12):
        world.fake.publish(channel, f"in the gap {hour}", date=at(DAY, hour), views=10)
    world.fake.edit(channel, known, times=100_001)  # pts far past the bot limit
    report = await world.collect()
    assert (report.collected, report.incomplete) == (1, 0)
    assert _by_day(await world.stats_rows()) == {DAY: (11, 101, True)}


async def test_a_gap_that_cannot_be_read_back_marks_the_day_incomplete(world: World) -> None:
    channel = await _followed(world)
    world.fake.publish(channel, "known", date=at(DAY, 1), views=1)
    await world.collect()
    world.fake.gap_read_max = 3  # wider than the gateway reads by id
    for i in range(25):
        world.fake.publish(channel, "gap", date=at(DAY, 2 + i % 20), views=10)
    world.fake.edit(channel, channel.messages[0], times=100_001)
    report = await world.collect()
    assert report.incomplete == 1 and report.body()["incomplete"] == 1
    [row] = await world.stats_rows()
    assert row.complete is False and row.posts == 1 + 20  # the latest 20: a lower bound
    await world.collect()  # the day again: what the stream lost stays lost
    assert _by_day(await world.stats_rows())[DAY][2] is False
    world.fake.publish(channel, "next day", date=at(NEXT, 9), views=7)
    await world.collect(day=NEXT)
    assert _by_day(await world.stats_rows())[NEXT] == (1, 7, True)


async def test_edits_and_pins_are_no_posts_and_a_deleted_post_no_longer_counts(
    world: World,
) -> None:
    channel = await _followed(world)
    a = world.fake.publish(channel, "a", date=at(DAY, 8), views=3)
    b = world.fake.publish(channel, "b", date=at(DAY, 9), views=4)
    world.fake.edit(channel, a)
    world.fake.pin(channel, b)
    await world.collect()
    assert _by_day(await world.stats_rows()) == {DAY: (2, 7, True)}
    world.fake.delete(channel, b)
    world.fake.edit(channel, a, times=3)
    await world.collect()
    assert _by_day(await world.stats_rows()) == {DAY: (1, 3, True)}


async def test_persistent_timestamp_invalid_restarts_following_and_heals_next_day(
    world: World,
) -> None:
    channel = await _followed(world)
    async with world.sessionmaker() as session:  # a position the channel never reached
        await session.execute(update(Channel).values(feed_pts=channel.pts + 1000))
        await session.commit()
    report = await world.collect()
    assert not report.failed and report.incomplete == 1
    assert _by_day(await world.stats_rows()) == {DAY: (0, 0, False)}
    async with world.sessionmaker() as session:
        stored = (await session.execute(select(Channel))).scalar_one()
        assert (stored.feed_pts, stored.feed_gap) == (channel.pts, False)
    world.fake.publish(channel, "next day", date=at(NEXT, 9), views=2)
    await world.collect(day=NEXT)
    assert _by_day(await world.stats_rows())[NEXT] == (1, 2, True)
