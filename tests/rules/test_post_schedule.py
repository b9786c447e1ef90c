"""Scheduled posts, cancel, reschedule and fan-out (issue 16): the rows, the jobs and what
a send task does when it runs — never early, never twice, never after a cancel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from botmgr.channels.links import to_bot_api_id
from botmgr.errors import Conflict, Invalid, NotFound
from botmgr.models import Post, PostStatus
from botmgr.outcomes import Refused
from botmgr.posts import dispatch, lifecycle, queries
from botmgr.posts import service as posts
from botmgr.posts.drafts import Draft
from botmgr.posts.service import Created, NotDue, PostSent
from botmgr.tasks.names import SEND_POST
from botmgr.telegram.fake import FakeChannel
from tests.rules.conftest import World


async def _channels(world: World, count: int = 1, bots: int = 1) -> list[FakeChannel]:
    made = []
    accounts = [await world.bot() for _ in range(bots)]
    for index in range(count):
        bot, token = accounts[index % bots]
        channel = world.fake.add_channel(username=f"ch{index}x{world.fake.count('x')}")
        world.fake.grant(channel, token)
        await world.binding(bot, channel)
        made.append(channel)
    return made


async def _submit(world: World, channels: list[FakeChannel], draft: Draft, **kw: bool) -> Created:
    async with world.unit() as unit:
        return await posts.submit(unit, channel_ids=[c.tg_id for c in channels], draft=draft, **kw)


async def _deliver(world: World, post_id: int) -> object:
    async with world.unit() as unit:
        return await posts.deliver(unit, post_id, gateway=world.fake, cipher=world.cipher)


def _in(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def test_a_post_due_soon_is_a_countdown_and_no_task_sends_it_early(world: World) -> None:
    [channel] = await _channels(world)
    created = await _submit(world, [channel], Draft(markdown="soon", send_at=_in(5)))
    [post] = created.posts
    [job] = world.publisher.sent
    assert (job.name, job.args, job.task_id) == (SEND_POST, [post.id], post.task_id)
    assert job.countdown is not None and 4 < job.countdown <= 5
    early = await _deliver(world, post.id)  # a copy that runs now: 5 s early
    assert isinstance(early, NotDue) and world.fake.count("send_message") == 0
    row = await world.get(Post, post.id)
    assert row.status == PostStatus.queued and row.not_before is not None


async def test_a_post_due_later_waits_in_its_row_for_the_reconciler(world: World) -> None:
    [channel] = await _channels(world)
    created = await _submit(world, [channel], Draft(markdown="later", send_at=_in(3600)))
    [post] = created.posts
    assert world.publisher.sent == []  # no hour-long countdown in the broker
    row = await world.get(Post, post.id)
    assert row.dispatched_at is None and row.not_before is not None
    async with world.unit() as unit:
        idle = await dispatch.reconcile(unit, grace=60, lookahead=65)
    assert idle.due == 0 and world.publisher.sent == []
    await _age(world, post.id, seconds=20)  # its time is near: the run publishes it
    async with world.unit() as unit:
        due = await dispatch.reconcile(unit, grace=60, lookahead=65)
    [job] = world.publisher.sent
    assert due.due == 1 and job.args == [post.id] and 19 < (job.countdown or 0) <= 20


async def test_a_send_at_in_the_past_means_now(world: World) -> None:
    [channel] = await _channels(world)
    created = await _submit(world, [channel], Draft(markdown="x", send_at=_in(-60)))
    [job] = world.publisher.sent
    assert job.countdown is None
    assert isinstance(await _deliver(world, created.posts[0].id), PostSent)


async def test_a_cancelled_post_is_never_sent(world: World) -> None:
    [channel] = await _channels(world)
    created = await _submit(world, [channel], Draft(markdown="x", send_at=_in(2)))
    post_id = created.posts[0].id
    async with world.unit() as unit:
        [change] = await lifecycle.remove(unit, post_id=post_id)
    assert change.task_id is None and change.post.status == PostStatus.cancelled
    await _age(world, post_id)
    late = await _deliver(world, post_id)  # its task runs when it was due
    assert isinstance(late, Refused) and late.status == 409
    assert world.fake.count("send_message") == 0
    async with world.unit() as unit:  # cancelling again is no error
        [again] = await lifecycle.remove(unit, post_id=post_id)
    assert again.post.status == PostStatus.cancelled


async def _age(world: World, post_id: int, seconds: float = -1) -> None:
    """Make the post due in ``seconds`` (now, by default), as if time had passed."""
    async with world.sessionmaker() as session:
        row = await session.get_one(Post, post_id)
        row.not_before = _in(seconds)
        await session.commit()


async def test_a_rescheduled_post_goes_at_its_new_time_only(world: World) -> None:
    [channel] = await _channels(world)
    created = await _submit(world, [channel], Draft(markdown="x", send_at=_in(2)))
    post_id = created.posts[0].id
    world.publisher.sent.clear()
    async with world.unit() as unit:  # later: past a countdown, the reconciler's
        await lifecycle.change(unit, post_id=post_id, send_at=_in(600))
    assert world.publisher.sent == []
    stale = await _deliver(world, post_id)  # the task published for the old time
    assert isinstance(stale, NotDue) and world.fake.count("send_message") == 0
    async with world.unit() as unit:  # earlier again: a countdown for the new time
        [change] = await lifecycle.change(unit, post_id=post_id, send_at=_in(10))
    [job] = world.publisher.sent
    assert job.task_id == change.post.task_id and 9 < (job.countdown or 0) <= 10
    await _age(world, post_id)
    assert isinstance(await _deliver(world, post_id), PostSent)
    assert isinstance(await _deliver(world, post_id), PostSent)  # the other copy: same answer
    assert world.fake.count("send_message") == 1
    with pytest.raises(Conflict, match="already sent"):
        async with world.unit() as unit:
            await lifecycle.change(unit, post_id=post_id, send_at=_in(60))


async def test_a_fan_out_makes_one_post_per_channel_each_with_its_bot(world: World) -> None:
    channels = await _channels(world, count=8, bots=4)
    created = await _submit(world, channels, Draft(markdown="all"), fan_out=True)
    assert created.group_id is not None and len(created.posts) == 8
    assert len({p.random_id for p in created.posts}) == 8
    assert created.channel_ids == [c.tg_id for c in channels]
    bots = {job.bot for job in world.publisher.sent}
    assert len(world.publisher.sent) == 8 and len(bots) == 4  # each routed to its bot
    for post in created.posts:
        assert isinstance(await _deliver(world, post.id), PostSent)
    for channel in channels:
        assert [m.text for m in channel.messages] == ["all"]
    group = await _group(world, created.group_id)
    assert [p.status for p in group] == ["sent"] * 8


async def _group(world: World, group_id: str) -> list[queries.PostOut]:
    async with world.sessionmaker() as session:
        return await queries.group(session, group_id)


async def test_a_fan_out_is_all_or_nothing(world: World) -> None:
    channels = await _channels(world, count=2)
    for ids in ([channels[0].tg_id, 987654321], [channels[0].tg_id, channels[0].tg_id]):
        with pytest.raises((NotFound, Invalid)):
            async with world.unit() as unit:
                await posts.submit(unit, channel_ids=ids, draft=Draft(markdown="x"), fan_out=True)
    assert world.publisher.sent == []
    async with world.sessionmaker() as session:
        page = await queries.table(session, queries.PostFilter(), limit=10, offset=0)
    assert page.total == 0


async def test_the_list_filters_by_channel_status_group_and_time(world: World) -> None:
    channels = await _channels(world, count=3)
    group = await _submit(world, channels[:2], Draft(markdown="g"), fan_out=True)
    later = await _submit(world, [channels[2]], Draft(markdown="l", send_at=_in(3600)))
    await _deliver(world, group.posts[0].id)

    async def page(**kw: object) -> list[int]:
        async with world.sessionmaker() as session:
            found = await queries.table(
                session,
                queries.PostFilter(**kw),
                limit=50,
                offset=0,  # type: ignore[arg-type]
            )
        return [p.post_id for p in found.messages]

    ids = [p.id for p in group.posts]
    assert await page() == [later.posts[0].id, ids[1], ids[0]]  # newest first
    assert await page(group_id=group.group_id) == ids[::-1]
    assert await page(channel_id=str(to_bot_api_id(channels[2].tg_id))) == [later.posts[0].id]
    assert await page(status=(PostStatus.sent,)) == [ids[0]]
    assert await page(since=_in(1800)) == [later.posts[0].id]
    # by time: the unsent one was asked for before the other went out
    assert await page(until=_in(1800), order="due") == ids[::-1]
    async with world.sessionmaker() as session:
        one = await queries.get(session, later.posts[0].id)
    assert one.scheduled and one.status == "queued" and one.send_at is not None
