"""The world model, its snapshot and the rate limiter, on their own."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tgemu import state
from tgemu.ratelimit import RateLimitConfig, RateLimiter
from tgemu.world import World, WorldError, bare_channel_id


def test_ids_tokens_and_usernames() -> None:
    world = World()
    bot = world.create_bot("alpha_bot")
    assert bot.token and bot.token.startswith(f"{bot.id}:")
    assert world.bot_by_token(bot.token) is bot
    assert world.bot_by_token(f"{bot.id}:wrong") is None
    with pytest.raises(WorldError) as taken:
        world.create_channel("x", "ALPHA_BOT")  # usernames are case-insensitive
    assert taken.value.status == 409
    with pytest.raises(WorldError):
        world.create_bot("a b")
    channel = world.create_channel("Chan", "alpha_chan")
    assert world.channel(channel.bot_api_id) is channel
    assert bare_channel_id(channel.bot_api_id) == channel.id
    assert world.resolve_username("Alpha_Chan") is channel


def test_membership_changes_feed_the_bot_update_stream() -> None:
    world = World()
    bot = world.create_bot("stream_bot")
    channel = world.create_channel("Chan")
    world.set_admin(channel.id, bot.id, {"post_messages": True})
    world.demote(channel.id, bot.id)
    world.remove_member(channel.id, bot.id)
    updates = world.bot_state(bot.id).updates
    assert [u.qts for u in updates] == [1, 2, 3]
    assert updates[0].prev is None and updates[0].new.admin_rights == {"post_messages": True}
    assert updates[1].new.admin_rights is None and updates[2].new is None
    with pytest.raises(WorldError):
        world.set_admin(channel.id, bot.id, {"fly": True})


def test_pts_grows_with_each_post() -> None:
    world = World()
    channel = world.create_channel("Chan")
    first = world.post(channel, sender_id=channel.creator_id, text="a", entities=[])
    second = world.post(channel, sender_id=channel.creator_id, text="b", entities=[])
    assert (first.id, second.id) == (1, 2)
    assert (first.pts, second.pts) == (2, 3) == (first.pts, channel.pts)


def test_snapshot_round_trip_keeps_authorizations_and_hashes(tmp_path: Path) -> None:
    world = World()
    bot = world.create_bot("saved_bot")
    channel = world.create_channel("Chan", "saved_chan")
    world.set_admin(channel.id, bot.id, {"post_messages": True})
    world.post(
        channel,
        sender_id=bot.id,
        text="x",
        entities=[{"_": "MessageEntityBold", "offset": 0, "length": 1}],
        random_id=-5,
    )
    world.authorize(1234, bot)
    file = tmp_path / "state.json"
    state.save(file, world, {"keys": ["AAAA"]})
    snapshot, keys = state.load(file)
    assert keys == {"keys": ["AAAA"]}
    again = World(snapshot)
    assert again.authorized_bot(1234).id == bot.id
    assert again.access_hash(bot.id, channel.id) == world.access_hash(bot.id, channel.id)
    restored = again.channel(channel.id)
    assert restored.members[bot.id].admin_rights == {"post_messages": True}
    assert restored.messages[1].entities[0]["_"] == "MessageEntityBold"
    assert again.bot_state(bot.id).random_ids[-5] == (channel.id, 1)
    assert state.load(tmp_path / "missing.json") == (None, None)


def test_rate_limiter_reports_the_real_remaining_wait() -> None:
    limiter = RateLimiter(
        RateLimitConfig(channel_burst=2, channel_per_minute=60, bot_burst=100, bot_per_second=100)
    )
    assert limiter.check_send(1, 10) == 0
    assert limiter.check_send(1, 10) == 0
    assert limiter.check_send(1, 10) == 1  # one token per second
    assert limiter.check_send(1, 11) == 0  # another channel is not affected
    time.sleep(1.05)
    assert limiter.check_send(1, 10) == 0
    limiter.reconfigure(enabled=False)
    assert all(limiter.check_send(1, 10) == 0 for _ in range(50))


def test_rate_limiter_per_bot_across_channels() -> None:
    limiter = RateLimiter(RateLimitConfig(bot_burst=30, bot_per_second=30))
    results = [limiter.check_send(7, channel) for channel in range(31)]
    assert results[:30] == [0] * 30 and results[30] == 1
