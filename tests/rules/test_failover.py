"""Failover and recovery: a binding that loses its rights moves to another bot of the
fleet that can post in the channel (least-loaded first), its queued posts go out through
that bot exactly once; with none it is ``invalid`` (cause rights) and the hourly sweep of
new bindings makes it ``active`` again once the rights are back. Every step is history."""

from __future__ import annotations

from sqlalchemy import select

from botmgr.channels import failover, rights
from botmgr.models import Binding, BindingEvent, BindingStatus, Post, PostStatus
from botmgr.outcomes import Refused, RetryAfterCommit
from botmgr.posts import service as posts
from botmgr.telegram.fake import FakeChannel
from botmgr.telegram.gateway import TelegramUnavailable
from tests.rules.conftest import World


async def _history(world: World, binding_id: int) -> list[BindingEvent]:
    async with world.sessionmaker() as session:
        return await failover.history(session, binding_id)


async def _two_admins(world: World) -> tuple[FakeChannel, str, str, int, int]:
    bot_a, token_a = await world.bot()
    bot_b, token_b = await world.bot()
    channel = world.fake.add_channel(username="news")
    world.fake.grant(channel, token_a)
    world.fake.grant(channel, token_b)
    binding = await world.binding(bot_a, channel)
    return channel, token_a, token_b, binding.id, bot_b.id


async def test_a_send_refused_for_rights_fails_over_and_posts_once(world: World) -> None:
    channel, token_a, _token_b, binding_id, bot_b = await _two_admins(world)
    async with world.unit() as unit:
        queued = [
            (await posts.create(unit, channel_id=channel.tg_id, markdown=f"post {i}")).id
            for i in range(3)
        ]
    world.fake.demote(channel, token_a)
    for post_id in queued:
        async with world.sessionmaker() as session:
            outcome = await posts.send(session, post_id, gateway=world.fake, cipher=world.cipher)
            await session.commit()
        assert isinstance(outcome, posts.PostSent)
    texts = [m.text for m in channel.messages]
    assert sorted(texts) == ["post 0", "post 1", "post 2"]  # each exactly once
    binding = await world.get(Binding, binding_id)
    assert binding.status == BindingStatus.active and binding.bot_id == bot_b
    async with world.sessionmaker() as session:
        sent = (await session.execute(select(Post.status))).scalars().all()
    assert set(sent) == {PostStatus.sent}
    events = await _history(world, binding_id)
    assert [(e.to_bot_id, e.why.startswith("failover")) for e in events] == [(bot_b, True)]


async def test_the_sweep_fails_over_to_the_least_loaded_admin(world: World) -> None:
    channel, token_a, _token_b, binding_id, bot_b = await _two_admins(world)
    bot_c, token_c = await world.bot()
    world.fake.grant(channel, token_c)
    busy = world.fake.add_channel(username="busy")
    world.fake.grant(busy, token_c)
    await world.binding(bot_c, busy)  # bot C carries one binding, bot B none
    world.fake.demote(channel, token_a)
    report = await world.sweep((BindingStatus.active,))
    assert report.invalidated == 1
    binding = await world.get(Binding, binding_id)
    assert binding.status == BindingStatus.active and binding.bot_id == bot_b
    assert binding.reason is None and binding.cause is None


async def test_check_binding_fails_over(world: World) -> None:
    channel, token_a, _token_b, binding_id, bot_b = await _two_admins(world)
    world.fake.demote(channel, token_a)
    async with world.sessionmaker() as session:
        await rights.check_binding(session, binding_id, gateway=world.fake, cipher=world.cipher)
        await session.commit()
    binding = await world.get(Binding, binding_id)
    assert binding.status == BindingStatus.active and binding.bot_id == bot_b


async def test_without_a_standby_the_binding_is_invalid_then_recovers(world: World) -> None:
    bot, token = await world.bot()
    other, _other_token = await world.bot()  # active, but not an admin of the channel
    channel = world.fake.add_channel(username="news")
    world.fake.grant(channel, token)
    binding_id = (await world.binding(bot, channel)).id
    world.fake.demote(channel, token)
    await world.sweep((BindingStatus.active,))
    binding = await world.get(Binding, binding_id)
    assert binding.status == BindingStatus.invalid and binding.cause == "rights"
    assert binding.bot_id == bot.id and binding.reason is not None
    assert "startchannel&admin=post_messages" in binding.reason
    # still no rights: the hourly sweep of new bindings leaves it invalid, reason kept
    reason = binding.reason
    await world.sweep((BindingStatus.new,))
    assert (await world.get(Binding, binding_id)).reason == reason
    world.fake.grant(channel, token)
    report = await world.sweep((BindingStatus.new,))
    assert report.activated == 1
    binding = await world.get(Binding, binding_id)
    assert binding.status == BindingStatus.active
    assert binding.reason is None and binding.cause is None
    whys = [(e.from_bot_id, e.to_bot_id, e.why) for e in await _history(world, binding_id)]
    assert whys[0][:2] == (bot.id, None) and whys[1] == (None, bot.id, failover.RESTORED)
    assert other.id not in {e[1] for e in whys}


async def test_an_invalid_binding_of_a_revoked_token_is_not_rechecked(world: World) -> None:
    bot, token = await world.bot()
    channel = world.fake.add_channel(username="news")
    binding = await world.binding(bot, channel, BindingStatus.invalid)
    async with world.sessionmaker() as session:
        row = await session.get_one(Binding, binding.id)
        row.cause, row.reason = "token", "token revoked"
        await session.commit()
    world.fake.grant(channel, token)
    report = await world.sweep((BindingStatus.new,))
    assert report.checked == 0
    assert (await world.get(Binding, binding.id)).status == BindingStatus.invalid


async def test_a_post_of_unknown_outcome_is_not_resent_by_the_new_bot(world: World) -> None:
    channel, token_a, _token_b, binding_id, bot_b = await _two_admins(world)
    async with world.unit() as unit:
        post_id = (await posts.create(unit, channel_id=channel.tg_id, markdown="maybe")).id
    world.fake.fail("send_message", TelegramUnavailable("timeout"))
    async with world.sessionmaker() as session:
        first = await posts.send(session, post_id, gateway=world.fake, cipher=world.cipher)
        await session.commit()
    assert isinstance(first, RetryAfterCommit)
    world.fake.demote(channel, token_a)
    async with world.sessionmaker() as session:
        outcome = await posts.send(session, post_id, gateway=world.fake, cipher=world.cipher)
        await session.commit()
    assert isinstance(outcome, Refused) and "unknown outcome" in outcome.message
    assert (await world.get(Post, post_id)).status == PostStatus.failed
    assert channel.messages == []  # not re-sent through bot B
    assert (await world.get(Binding, binding_id)).bot_id == bot_b  # the binding still moved
