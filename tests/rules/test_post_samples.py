"""Post samples (stats/samples.py): the reconciler dispatches one task per channel with
samples due; the task reads them in batches of ≤ 100 ids; a flood wait keeps them due
without a second task; a channel nobody can read closes them with the reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from botmgr.models import BindingStatus, PostSample
from botmgr.outcomes import RetryAfterCommit
from botmgr.posts import dispatch
from botmgr.stats import samples
from botmgr.tasks.names import SAMPLE_POSTS
from botmgr.telegram.fake import FakeChannel
from botmgr.telegram.gateway import FloodWait
from tests.rules.conftest import World

AGES = (1, 24, 48)


async def _channel_with_posts(
    world: World, count: int, status: BindingStatus = BindingStatus.active
) -> tuple[FakeChannel, int, int]:
    """A bound channel with ``count`` posts made 61 minutes ago (their 1 h samples due);
    the channel's and the bot's database ids."""
    bot, token = await world.bot()
    channel = world.fake.add_channel("Sampled", subscribers=1000)
    world.fake.grant(channel, token)
    binding = await world.binding(bot, channel, status)
    published = datetime.now(UTC) - timedelta(minutes=61)
    for n in range(count):
        message = world.fake.publish(channel, f"post {n}", date=published)
        message.views, message.forwards, message.reactions = 10 * n, n, 2 * n
    async with world.sessionmaker() as session:
        seen = [(binding.channel_id, m.id, m.date) for m in channel.messages]
        await samples.plan_seen(session, seen, ages=AGES)
        await session.commit()
    return channel, binding.channel_id, bot.id


async def _reconcile(world: World) -> dispatch.Reconciled:
    async with world.unit() as unit:
        return await dispatch.reconcile(unit, grace=120, lookahead=65)


async def _take(world: World, channel_id: int) -> samples.Taken | RetryAfterCommit:
    async with world.sessionmaker() as session:
        taken = await samples.take(session, channel_id, gateway=world.fake, cipher=world.cipher)
        await session.commit()
    return taken


async def _samples(world: World, channel_id: int) -> list[PostSample]:
    async with world.sessionmaker() as session:
        stmt = select(PostSample).where(PostSample.channel_id == channel_id)
        return list((await session.execute(stmt.order_by(PostSample.id))).scalars())


async def test_due_samples_are_read_per_channel_in_batches_of_100(world: World) -> None:
    _, channel_id, bot_id = await _channel_with_posts(world, 250)
    assert len(await _samples(world, channel_id)) == 250 * 3  # every age still ahead

    assert (await _reconcile(world)).samples == 1
    jobs = [j for j in world.publisher.sent if j.name == SAMPLE_POSTS]
    assert [(j.args, j.bot) for j in jobs] == [([channel_id], bot_id)]
    assert (await _reconcile(world)).samples == 0  # out already: not twice

    taken = await _take(world, channel_id)
    assert isinstance(taken, samples.Taken)
    assert (taken.read, taken.missed, taken.calls) == (250, 0, 3)
    assert world.fake.count("message_counts") == 3
    read = {s.message_id: s for s in await _samples(world, channel_id) if s.age_hours == 1}
    assert all(s.taken_at is not None for s in read.values())
    assert (read[7].views, read[7].forwards, read[7].reactions) == (60, 6, 12)  # post 6
    later = [s for s in await _samples(world, channel_id) if s.age_hours > 1]
    assert all(s.taken_at is None for s in later)  # not due: untouched


async def test_a_flood_wait_keeps_the_samples_due_without_a_second_task(world: World) -> None:
    _, channel_id, _ = await _channel_with_posts(world, 3)
    await _reconcile(world)
    world.fake.fail("message_counts", FloodWait(600))
    assert isinstance(await _take(world, channel_id), RetryAfterCommit)
    pending = [s for s in await _samples(world, channel_id) if s.age_hours == 1]
    assert all(s.taken_at is None for s in pending)
    # Marked out until the retry after the wait: the reconciler sends no second task.
    assert (await _reconcile(world)).samples == 0
    taken = await _take(world, channel_id)  # the task's retry
    assert isinstance(taken, samples.Taken) and taken.read == 3


async def test_deleted_posts_and_unbound_channels_are_closed_with_the_reason(
    world: World,
) -> None:
    channel, channel_id, _ = await _channel_with_posts(world, 2)
    world.fake.delete(channel, channel.messages[0])
    await _reconcile(world)
    taken = await _take(world, channel_id)
    assert isinstance(taken, samples.Taken) and (taken.read, taken.missed) == (1, 1)
    first = next(s for s in await _samples(world, channel_id) if s.message_id == 1)
    assert (first.views, first.error) == (None, samples.GONE)

    _, lost_id, _ = await _channel_with_posts(world, 2, BindingStatus.invalid)
    world.publisher.sent.clear()
    assert (await _reconcile(world)).samples == 0
    assert not [j for j in world.publisher.sent if j.name == SAMPLE_POSTS]
    closed = [s for s in await _samples(world, lost_id) if s.age_hours == 1]
    assert {s.error for s in closed} == {"no active binding when the sample was due"}
