"""Due-time dispatch and the reconciler (posts/dispatch.py): long waits are rows, not
countdowns; queued posts without a live task are published again, exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from botmgr.errors import Unavailable
from botmgr.models import DeferredJob, Post, PostStatus
from botmgr.outcomes import Refused
from botmgr.posts import dispatch
from botmgr.posts import service as posts
from botmgr.posts.dispatch import Postponed, Reconciled
from botmgr.posts.service import PostSent
from botmgr.tasks.names import CHECK_BINDING, SEND_POST
from tests.rules.conftest import World

GRACE = 60.0
LOOKAHEAD = 10.0


async def _queued(world: World) -> Post:
    bot, token = await world.bot()
    channel = world.fake.add_channel()
    world.fake.grant(channel, token)
    await world.binding(bot, channel)
    async with world.unit() as unit:
        post = await posts.create(unit, channel_id=channel.tg_id, markdown="hello")
    world.publisher.sent.clear()  # the API's own publish, done
    return post


async def _postpone(world: World, post_id: int, seconds: float, retries: int = 3) -> object:
    async with world.unit() as unit:
        return await dispatch.postpone(
            unit.session,
            post_id,
            seconds,
            reason="FLOOD_WAIT",
            max_retries=retries,
            max_countdown=LOOKAHEAD,
        )


async def _reconcile(world: World) -> Reconciled:
    async with world.unit() as unit:
        return await dispatch.reconcile(unit, grace=GRACE, lookahead=LOOKAHEAD)


async def _age(world: World, post_id: int, **columns: object) -> None:
    async with world.sessionmaker() as session:
        await session.execute(update(Post).where(Post.id == post_id).values(**columns))
        await session.commit()


async def test_a_long_wait_leaves_no_task_and_is_published_when_due(world: World) -> None:
    post = await _queued(world)
    waited = await _postpone(world, post.id, 7200)
    assert waited == Postponed(7200, by_countdown=False, attempts=1)
    row = await world.get(Post, post.id)
    assert row.dispatched_at is None and row.not_before is not None
    assert (await _reconcile(world)).due == 0  # two hours early: nothing goes out
    assert world.publisher.sent == []
    soon = datetime.now(UTC) + timedelta(seconds=4)
    await _age(world, post.id, not_before=soon)
    assert (await _reconcile(world)).due == 1
    [job] = world.publisher.sent
    assert (job.name, job.args, job.task_id) == (SEND_POST, [post.id], post.task_id)
    assert job.countdown is not None and 0 < job.countdown <= 4  # the rest of the wait
    row = await world.get(Post, post.id)
    assert row.dispatched_at is not None and row.dispatched_at >= soon
    world.publisher.sent.clear()
    assert (await _reconcile(world)).due == 0  # published once, not every run


async def test_a_short_wait_is_a_countdown_and_the_reconciler_leaves_it(world: World) -> None:
    post = await _queued(world)
    waited = await _postpone(world, post.id, 3)
    assert isinstance(waited, Postponed) and waited.by_countdown
    assert await _reconcile(world) == Reconciled(jobs=0, due=0, lost=0)


async def test_waiting_too_often_fails_the_post_with_the_reason(world: World) -> None:
    post = await _queued(world)
    for _ in range(2):
        assert isinstance(await _postpone(world, post.id, 3, retries=2), Postponed)
    refused = await _postpone(world, post.id, 3, retries=2)
    assert isinstance(refused, Refused) and "gave up after 2 retries: FLOOD_WAIT" in refused.message
    row = await world.get(Post, post.id)
    assert row.status == PostStatus.failed and row.error == refused.message


async def test_a_finished_post_is_not_postponed(world: World) -> None:
    post = await _queued(world)
    async with world.sessionmaker() as session:
        await posts.send(session, post.id, gateway=world.fake, cipher=world.cipher)
        await session.commit()
    assert isinstance(await _postpone(world, post.id, 7200), PostSent)
    assert (await world.get(Post, post.id)).not_before is None


async def test_a_stranded_post_is_published_again_and_sent_once(world: World) -> None:
    post = await _queued(world)
    fresh = await _queued(world)
    # The first one's task was lost (the API died before publishing, Redis was flushed).
    await _age(world, post.id, dispatched_at=datetime.now(UTC) - timedelta(seconds=GRACE + 5))
    assert await _reconcile(world) == Reconciled(jobs=0, due=0, lost=1)
    [job] = world.publisher.sent
    assert job.args == [post.id] and job.task_id == post.task_id and job.countdown is None
    # The lost task turns up after all: both run, the post goes out once.
    for _ in range(2):
        async with world.sessionmaker() as session:
            await posts.send(session, post.id, gateway=world.fake, cipher=world.cipher)
            await session.commit()
    assert world.fake.count("send_message") == 1
    assert (await world.get(Post, post.id)).status == PostStatus.sent
    assert (await world.get(Post, fresh.id)).status == PostStatus.queued  # within its grace


async def test_a_post_being_sent_is_skipped(world: World) -> None:
    post = await _queued(world)
    await _age(world, post.id, dispatched_at=datetime.now(UTC) - timedelta(seconds=GRACE + 5))
    async with world.sessionmaker() as sending:  # a send task holds the row lock
        await sending.get(Post, post.id, with_for_update=True)
        assert (await _reconcile(world)).lost == 0
        await sending.rollback()
    assert (await _reconcile(world)).lost == 1


async def test_a_refused_publish_leaves_the_post_for_the_next_run(world: World) -> None:
    post = await _queued(world)
    await _postpone(world, post.id, 7200)
    await _age(world, post.id, not_before=datetime.now(UTC))
    world.publisher.refuse = True
    with pytest.raises(Unavailable, match="not scheduled"):  # after the compensation ran
        await _reconcile(world)
    assert (await world.get(Post, post.id)).dispatched_at is None
    world.publisher.refuse = False
    assert (await _reconcile(world)).due == 1


async def test_deferred_jobs_are_published_when_due_and_kept_if_refused(world: World) -> None:
    async with world.unit() as unit:
        unit.enqueue(CHECK_BINDING, 7, countdown=3600, task_id="later", retries=2)
        unit.enqueue(CHECK_BINDING, 8, countdown=2, task_id="now")  # short: a countdown
    assert [j.task_id for j in world.publisher.sent] == ["now"]
    [row] = await world.deferred()
    assert (row.name, row.args, row.task_id, row.retries) == (CHECK_BINDING, [7], "later", 2)
    world.publisher.sent.clear()
    assert (await _reconcile(world)).jobs == 0
    async with world.sessionmaker() as session:
        await session.execute(update(DeferredJob).values(due_at=datetime.now(UTC)))
        await session.commit()
    world.publisher.refuse = True
    with pytest.raises(Unavailable):
        await _reconcile(world)
    [kept] = await world.deferred()  # put back by the compensation
    assert kept.task_id == "later"
    world.publisher.refuse = False
    assert (await _reconcile(world)).jobs == 1
    [job] = world.publisher.sent
    assert (job.name, job.args, job.task_id, job.retries) == (CHECK_BINDING, [7], "later", 2)
    assert await world.deferred() == []
