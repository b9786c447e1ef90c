"""Statistics count from the moment a binding becomes active: every path to ``active``
records ``channels.active_since`` (no Telegram call), and the first collection counts the
posts from then on; the day of activation says ``since`` and is not ``complete``; a day
before it has no row."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import update

from botmgr.channels import resolution
from botmgr.models import Binding, BindingStatus, Channel
from botmgr.telegram.fake import FakeChannel
from tests.rules.conftest import DAY, World

ACTIVE = datetime(2026, 11, 30, 9, 30, tzinfo=UTC)


async def _channel(world: World, binding: Binding) -> Channel:
    return await world.get(Channel, binding.channel_id)


async def _activated_at(world: World, binding: Binding, at: datetime) -> None:
    """Move the recorded activation to a chosen moment (the posts are dated around it)."""
    async with world.sessionmaker() as session:
        await session.execute(
            update(Channel).where(Channel.id == binding.channel_id).values(active_since=at)
        )
        await session.commit()


def _at(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


async def _bound_and_checked(world: World) -> tuple[FakeChannel, Binding]:
    bot, token = await world.bot()
    channel = world.fake.add_channel(subscribers=7)
    binding = await world.binding(bot, channel, BindingStatus.new)
    world.fake.grant(channel, token)
    before = datetime.now(UTC)
    await world.check(binding.id)
    assert (await world.get(Binding, binding.id)).status == BindingStatus.active
    since = (await _channel(world, binding)).active_since
    assert since is not None and before - timedelta(seconds=5) <= since <= datetime.now(UTC)
    return channel, binding


async def test_check_records_activation_without_a_call_and_counts_the_first_day(
    world: World,
) -> None:
    channel, binding = await _bound_and_checked(world)
    assert world.fake.count("channel_feed") == 0  # nothing asked of Telegram at activation
    await _activated_at(world, binding, ACTIVE)
    world.fake.publish(channel, "before", date=_at(8), views=1000)  # before activation
    posts = [
        world.fake.publish(channel, t, date=_at(h), views=v)
        for t, h, v in (("a", 10, 5), ("b", 12, 7), ("c", 23, 11))
    ]
    world.fake.publish(channel, "tomorrow", date=_at(1, day=DAY + timedelta(days=1)), views=99)

    assert (await world.collect(day=DAY - timedelta(days=1))).collected == 0
    assert await world.stats_rows() == []  # a day before activation: no row at all

    report = await world.collect()
    assert (report.collected, report.started_following, report.incomplete) == (1, 0, 1)
    [row] = await world.stats_rows()
    assert (row.day, row.posts, row.views, row.subscribers) == (DAY, 3, 23, 7)
    assert (row.since, row.complete) == (ACTIVE, False)  # seen from activation on

    await world.collect()  # a re-run replaces, never doubles
    [row] = await world.stats_rows()
    assert (row.posts, row.views, row.since) == (3, 23, ACTIVE)

    world.fake.delete(channel, posts[1])
    await world.collect()
    [row] = await world.stats_rows()
    assert (row.posts, row.views) == (2, 16)  # a deleted post drops out of both

    report = await world.collect(day=DAY + timedelta(days=1))  # the next day: whole, complete
    [_, nxt] = await world.stats_rows()
    assert (nxt.posts, nxt.views, nxt.since, nxt.complete) == (1, 99, None, True)


async def test_activation_at_midnight_sees_the_whole_day(world: World) -> None:
    channel, binding = await _bound_and_checked(world)
    await _activated_at(world, binding, _at(0))
    world.fake.publish(channel, "a", date=_at(0, 1), views=3)
    await world.collect()
    [row] = await world.stats_rows()
    assert (row.posts, row.views, row.since, row.complete) == (1, 3, None, True)


async def test_the_sweep_records_every_activation_in_one_statement(world: World) -> None:
    bot, token = await world.bot()
    bindings = []
    for _ in range(5):
        channel = world.fake.add_channel()
        world.fake.grant(channel, token)
        bindings.append(await world.binding(bot, channel, BindingStatus.new))
    stay = await world.binding(bot, world.fake.add_channel(), BindingStatus.new)  # no rights
    report = await world.sweep((BindingStatus.new,))
    assert report.activated == 5
    assert world.fake.count("channel_feed") == 0
    for b in bindings:
        assert (await _channel(world, b)).active_since is not None
    assert (await _channel(world, stay)).active_since is None


async def test_a_channel_already_followed_keeps_its_position(world: World) -> None:
    """Activation records nothing for a channel with a stream position: following goes
    on from the stored pts (e.g. an invalid binding revived)."""
    bot, token = await world.bot()
    channel = world.fake.add_channel()
    binding = await world.binding(bot, channel, BindingStatus.new)
    async with world.sessionmaker() as session:
        await session.execute(
            update(Channel).where(Channel.id == binding.channel_id).values(feed_pts=1)
        )
        await session.commit()
    world.fake.grant(channel, token)
    await world.check(binding.id)
    assert (await _channel(world, binding)).active_since is None


async def test_too_long_a_stream_is_read_back_to_activation(world: World) -> None:
    channel, binding = await _bound_and_checked(world)
    await _activated_at(world, binding, ACTIVE)
    world.fake.diff_limit = 3  # the stream from its start is TooLong
    for _ in range(10):
        world.fake.publish(channel, "old", date=_at(7), views=1000)
    for hour in (10, 11):
        world.fake.publish(channel, "new", date=_at(hour), views=4)
    await world.collect()
    [row] = await world.stats_rows()
    assert (row.posts, row.views, row.since, row.complete) == (2, 8, ACTIVE, False)


async def test_a_read_back_that_cannot_reach_activation_is_incomplete(world: World) -> None:
    channel, binding = await _bound_and_checked(world)
    await _activated_at(world, binding, ACTIVE)
    world.fake.diff_limit, world.fake.gap_read_max = 3, 2
    for hour in (10, 11, 12, 13):
        world.fake.publish(channel, "new", date=_at(hour), views=1)
    report = await world.collect()
    assert report.incomplete == 1
    [row] = await world.stats_rows()
    assert (row.posts, row.complete) == (2, False)  # a lower bound, said so
    world.fake.publish(channel, "next", date=_at(2, day=DAY + timedelta(days=1)), views=1)
    await world.collect(day=DAY + timedelta(days=1))
    [_, nxt] = await world.stats_rows()
    assert (nxt.posts, nxt.complete) == (1, True)  # following from the stored pts since


async def test_bind_with_rights_records_the_activation(world: World) -> None:
    bot, token = await world.bot()
    channel = world.fake.add_channel()
    world.fake.grant(channel, token)
    binding = await world.binding(bot, channel, BindingStatus.new)
    async with world.sessionmaker() as session:
        await resolution.resolve_binding(
            session, binding.id, gateway=world.fake, cipher=world.cipher
        )
        await session.commit()
    assert (await world.get(Binding, binding.id)).status == BindingStatus.active
    assert (await _channel(world, binding)).active_since is not None
    assert world.fake.count("channel_feed") == 0
