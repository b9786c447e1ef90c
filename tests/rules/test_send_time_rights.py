"""A post to a ``new`` binding checks the bot's rights when it is sent: one getParticipant
(``rights.apply_rights``), then the post goes out, or fails with the reason and the deep
link that grants the rights."""

from __future__ import annotations

import pytest

from botmgr.channels.schemas import deep_link
from botmgr.errors import Conflict, Invalid
from botmgr.models import Binding, BindingStatus, Channel, Post, PostStatus
from botmgr.outcomes import Refused, Status
from botmgr.posts import service as posts
from botmgr.posts.service import PostSent
from botmgr.telegram.fake import FakeChannel
from botmgr.telegram.gateway import TelegramUnavailable
from tests.rules.conftest import World


async def _new_binding(world: World) -> tuple[FakeChannel, str, Binding, str]:
    bot, token = await world.bot()
    channel = world.fake.add_channel(username="fresh")
    binding = await world.binding(bot, channel, BindingStatus.new)
    return channel, token, binding, bot.username


async def _post(world: World, channel: FakeChannel, markdown: str = "hi") -> int:
    async with world.unit() as unit:
        post = await posts.create(unit, channel_id=channel.tg_id, markdown=markdown)
    return post.id


async def _send(world: World, post_id: int) -> PostSent | Refused:
    async with world.sessionmaker() as session:
        outcome = await posts.send(session, post_id, gateway=world.fake, cipher=world.cipher)
        await session.commit()
    return outcome


async def test_granted_after_binding_the_post_goes_out_and_the_binding_is_active(
    world: World,
) -> None:
    channel, token, binding, _ = await _new_binding(world)
    post_id = await _post(world, channel)  # accepted although the binding is new
    world.fake.grant(channel, token)
    outcome = await _send(world, post_id)
    assert isinstance(outcome, PostSent) and outcome.message_id == 1
    assert world.fake.count("get_rights") == 1 and world.fake.count("send_message") == 1
    row = await world.get(Binding, binding.id)
    assert row.status == BindingStatus.active and row.reason is None
    assert row.last_checked_at is not None
    # The next post to the now active binding asks for no rights.
    outcome = await _send(world, await _post(world, channel))
    assert isinstance(outcome, PostSent) and world.fake.count("get_rights") == 1


async def test_rights_still_missing_fail_the_post_with_reason_and_deep_link(
    world: World,
) -> None:
    channel, token, binding, username = await _new_binding(world)
    post_id = await _post(world, channel)
    outcome = await _send(world, post_id)
    assert isinstance(outcome, Refused) and outcome.status == Status.conflict
    assert outcome.details["deep_link"] == deep_link(username)
    assert "not an admin" in outcome.details["reason"]
    assert outcome.details["reason"] in outcome.message
    assert world.fake.count("send_message") == 0
    row = await world.get(Binding, binding.id)
    assert row.status == BindingStatus.new and "not an admin" in (row.reason or "")
    assert row.last_checked_at is not None
    post = await world.get(Post, post_id)
    assert post.status == PostStatus.failed and "not an admin" in (post.error or "")

    # An admin without the right to post: the reason says so.
    world.fake.grant(channel, token, can_post=False)
    outcome = await _send(world, await _post(world, channel))
    assert isinstance(outcome, Refused) and "no right to post" in outcome.details["reason"]
    assert (await world.get(Binding, binding.id)).status == BindingStatus.new


async def test_an_unreachable_telegram_at_the_check_records_nothing(world: World) -> None:
    channel, token, binding, _ = await _new_binding(world)
    post_id = await _post(world, channel)
    world.fake.fail("get_rights", TelegramUnavailable("timeout"))
    with pytest.raises(TelegramUnavailable):
        await _send(world, post_id)  # the task retries
    assert (await world.get(Post, post_id)).status == PostStatus.queued
    world.fake.grant(channel, token)
    assert isinstance(await _send(world, post_id), PostSent)
    assert (await world.get(Binding, binding.id)).status == BindingStatus.active


async def test_invalid_inactive_or_no_binding_are_refused_up_front(world: World) -> None:
    channel, _, binding, _ = await _new_binding(world)
    for status in (BindingStatus.invalid, BindingStatus.inactive):
        async with world.sessionmaker() as session:
            row = await session.get_one(Binding, binding.id)
            row.status = status
            await session.commit()
        with pytest.raises(Conflict):
            await _post(world, channel)
        with pytest.raises(Invalid):  # a too-long message is 422 whatever the binding
            await _post(world, channel, "x" * 5000)
    async with world.sessionmaker() as session:
        session.add(Channel(tg_id=424242, reference="424242"))
        await session.commit()
    with pytest.raises(Conflict):
        async with world.unit() as unit:
            await posts.create(unit, channel_id=424242, markdown="hi")
    assert world.publisher.sent == []
