"""The post state machine: queued → sent | failed, exactly once, whatever Telegram says."""

from __future__ import annotations

import pytest

from botmgr.errors import Conflict, Invalid, NotFound
from botmgr.models import Binding, BindingStatus, Bot, BotStatus, Post, PostStatus
from botmgr.outcomes import Refused, RetryAfterCommit, Status
from botmgr.posts import service as posts
from botmgr.posts.service import NOT_SCHEDULED, PostSent
from botmgr.tasks.names import SEND_POST
from botmgr.telegram.gateway import (
    BotAccount,
    ChannelRef,
    FloodWait,
    MessageRejected,
    TelegramUnavailable,
)
from tests.rules.conftest import World


async def _queued(world: World, markdown: str = "**hello**") -> tuple[Post, str, int]:
    bot, token = await world.bot()
    channel = world.fake.add_channel(username="news")
    world.fake.grant(channel, token)
    binding = await world.binding(bot, channel)
    async with world.unit() as unit:
        post = await posts.create(unit, channel_id=channel.tg_id, markdown=markdown)
    return post, token, binding.id


async def _send(world: World, post_id: int) -> PostSent | Refused:
    async with world.sessionmaker() as session:
        outcome = await posts.send(session, post_id, gateway=world.fake, cipher=world.cipher)
        await session.commit()
    return outcome


async def test_a_post_is_queued_then_sent_once(world: World) -> None:
    post, _, _ = await _queued(world)
    [job] = world.publisher.sent  # published after the commit, with the post's task id
    assert (job.name, job.args, job.task_id) == (SEND_POST, [post.id], post.task_id)
    first = await _send(world, post.id)
    assert isinstance(first, PostSent) and first.message_id == 1
    assert first.link == f"https://t.me/news/{first.message_id}"
    again = await _send(world, post.id)  # a re-delivered task
    assert again == first
    assert world.fake.count("send_message") == 1
    stored = await world.get(Post, post.id)
    assert stored.status == PostStatus.sent and stored.sent_at is not None


async def test_a_lost_answer_is_recorded_as_sent_not_sent_again(world: World) -> None:
    post, _, _ = await _queued(world)
    channel = next(iter(world.fake.channels.values()))
    account = BotAccount(bot_id=1, token=next(iter(world.fake.bots)))
    await world.fake.send_message(
        account, ChannelRef(tg_id=channel.tg_id), "x", [], random_id=post.random_id
    )
    outcome = await _send(world, post.id)
    assert isinstance(outcome, PostSent) and outcome.message_id is None
    assert len(channel.messages) == 1


async def test_retryable_answers_go_up_and_leave_the_post_queued(world: World) -> None:
    post, _, _ = await _queued(world)
    world.fake.fail("send_message", FloodWait(7))
    with pytest.raises(FloodWait):
        await _send(world, post.id)
    assert (await world.get(Post, post.id)).status == PostStatus.queued
    # Unreachable mid-send: the outcome is unknown; the bot is remembered, then a retry.
    world.fake.fail("send_message", TelegramUnavailable("timeout"))
    outcome = await _send(world, post.id)
    assert isinstance(outcome, RetryAfterCommit)
    assert isinstance(outcome.error, TelegramUnavailable)
    row = await world.get(Post, post.id)
    assert row.status == PostStatus.queued and row.uncertain_bot_id is not None
    assert isinstance(await _send(world, post.id), PostSent)  # the same bot may retry


async def test_refusals_fail_the_post_for_good(world: World) -> None:
    post, _token, _binding_id = await _queued(world)
    world.fake.fail("send_message", MessageRejected("MESSAGE_EMPTY"))
    outcome = await _send(world, post.id)
    assert isinstance(outcome, Refused) and outcome.status == Status.invalid
    assert (await world.get(Post, post.id)).status == PostStatus.failed
    assert await _send(world, post.id) == Refused(
        Status.unavailable, outcome.message, {"post_id": post.id}
    )
    assert world.fake.count("send_message") == 1  # a failed post is never sent later


async def test_lost_rights_fail_the_post_and_invalidate_the_binding(world: World) -> None:
    post, token, binding_id = await _queued(world)
    world.fake.demote(next(iter(world.fake.channels.values())), token)
    outcome = await _send(world, post.id)
    assert isinstance(outcome, Refused) and outcome.status == Status.unavailable
    binding = await world.get(Binding, binding_id)
    assert binding.status == BindingStatus.invalid and binding.cause == "rights"
    assert binding.reason is not None and "CHAT_WRITE_FORBIDDEN" in binding.reason
    assert "startchannel&admin=post_messages" in binding.reason  # the deep link


async def test_a_revoked_token_fails_the_post_and_takes_the_bot_out(world: World) -> None:
    post, token, binding_id = await _queued(world)
    world.fake.revoke(token)
    outcome = await _send(world, post.id)
    assert isinstance(outcome, Refused) and "token rejected" in outcome.message
    binding = await world.get(Binding, binding_id)
    bot = await world.get(Bot, binding.bot_id)
    assert bot.status == BotStatus.invalid and bot.status_reason.startswith("token rejected")
    assert binding.status == BindingStatus.invalid


async def test_a_post_the_queue_refused_is_failed_and_never_sent(world: World) -> None:
    bot, token = await world.bot()
    channel = world.fake.add_channel()
    world.fake.grant(channel, token)
    await world.binding(bot, channel)
    world.publisher.refuse = True
    with pytest.raises(Exception, match="not scheduled"):
        async with world.unit() as unit:
            post = await posts.create(unit, channel_id=channel.tg_id, markdown="hi")
    stored = await world.get(Post, post.id)
    assert stored.status == PostStatus.failed and stored.error == NOT_SCHEDULED
    assert isinstance(await _send(world, post.id), Refused)  # the task came late anyway
    assert world.fake.count("send_message") == 0


async def test_create_refuses_what_cannot_be_posted(world: World) -> None:
    bot, _token = await world.bot()
    channel = world.fake.add_channel()
    await world.binding(bot, channel, BindingStatus.invalid)
    cases = [
        ("garbage", "hi", Invalid),
        (123456789, "hi", NotFound),
        (channel.tg_id, "hi", Conflict),  # bound, but the bot lost its rights
        (channel.tg_id, "x" * 4097, Invalid),  # the body first, whatever the binding
    ]
    for channel_id, text, error in cases:
        with pytest.raises(error):
            async with world.unit() as unit:
                await posts.create(unit, channel_id=channel_id, markdown=text)
    assert world.publisher.sent == []  # a rolled-back unit publishes nothing


async def test_a_repeated_random_id_answered_with_the_original_records_one_post(
    world: World,
) -> None:
    # Telegram may answer a repeated random_id with the original message instead of
    # RANDOM_ID_DUPLICATE: an earlier attempt's answer was lost, the retry gets it again.
    post, _, _ = await _queued(world)
    channel = next(iter(world.fake.channels.values()))
    world.fake._append(channel, "**hello**", post.random_id, post.created_at, 0)
    world.fake.repeat_answers_original = True
    outcome = await _send(world, post.id)
    assert isinstance(outcome, PostSent) and outcome.message_id == 1
    row = await world.get(Post, post.id)
    assert (row.status, row.message_id) == (PostStatus.sent, 1)
    assert [m.random_id for m in channel.messages] == [post.random_id]  # one post


async def test_a_post_its_worker_cannot_render_fails_with_the_reason(world: World) -> None:
    # Accepted under other limits (a setting lowered since): the send refuses it for good,
    # rather than leaving it queued for the reconciler to publish again and again.
    post, _, _ = await _queued(world)
    async with world.sessionmaker() as session:
        row = await session.get_one(Post, post.id)
        row.markdown = "- " * 40 + "deep"
        await session.commit()
    refused = await _send(world, post.id)
    assert isinstance(refused, Refused) and refused.status == Status.invalid
    assert "nesting limit" in refused.message
    stored = await world.get(Post, post.id)
    assert stored.status == PostStatus.failed and stored.error == refused.message
    assert world.fake.count("send_message") == 0
