"""updates.getChannelDifference as Telegram answers it: TooLong past pts + limit, the
100000 limit, PERSISTENT_TIMESTAMP_INVALID, and edits/deletions/pins as their own updates
(core.telegram.org method/updates.getChannelDifference, type/updates.ChannelDifference)."""

from __future__ import annotations

import time

from telethon.tl import functions, types

from tests.tgemu.helpers import Harness
from tests.tgemu.test_world_methods import expect_error, login
from tgemu.world import Channel

Diff = functions.updates.GetChannelDifferenceRequest


async def _setup(h: Harness, name: str) -> tuple[object, Channel, types.InputChannel]:
    bot, ctx = await login(h, f"{name}_bot")
    channel = h.world.create_channel("Diff", f"{name}_chan")
    h.world.set_admin(channel.id, bot.id, {"post_messages": True})
    return ctx, channel, types.InputChannel(channel.id, h.world.access_hash(bot.id, channel.id))


def _post(h: Harness, channel: Channel, text: str) -> int:
    return h.world.post(channel, sender_id=channel.creator_id, text=text, entities=[]).id


def _diff(ref: types.InputChannel, pts: int, limit: int = 100_000) -> Diff:
    return Diff(ref, types.ChannelMessagesFilterEmpty(), pts=pts, limit=limit, force=True)


async def test_a_gap_past_pts_plus_limit_is_too_long_with_the_latest_messages() -> None:
    h = Harness()
    ctx, channel, ref = await _setup(h, "toolong")
    start = channel.pts
    first = _post(h, channel, "old")
    h.world.edit(channel.id, first, text="edited", times=100_001)  # one record, 100,001 pts
    ids = [_post(h, channel, f"new {i}") for i in range(25)]
    answer = await h.call(ctx, _diff(ref, start))
    assert isinstance(answer, types.updates.ChannelDifferenceTooLong) and answer.final
    assert answer.dialog.pts == channel.pts == start + 1 + 100_001 + 25
    assert answer.dialog.top_message == ids[-1]
    # only the latest (20 by default), newest first — the gap itself is not replayed
    assert [m.id for m in answer.messages] == ids[::-1][:20]
    bytes(answer)
    # the same gap within the limit is an ordinary, final difference
    small = await h.call(ctx, _diff(ref, channel.pts - 25))
    assert isinstance(small, types.updates.ChannelDifference) and small.final
    assert [m.id for m in small.new_messages] == ids and small.pts == channel.pts
    # a user-sized limit on a small gap: TooLong too (pts + limit < remote pts)
    assert isinstance(
        await h.call(ctx, _diff(ref, channel.pts - 25, limit=10)),
        types.updates.ChannelDifferenceTooLong,
    )


async def test_limit_above_100000_and_a_pts_from_the_future_are_refused() -> None:
    h = Harness()
    ctx, channel, ref = await _setup(h, "limits")
    await expect_error(h, ctx, _diff(ref, channel.pts, limit=100_001), 400, "LIMIT_INVALID")
    await expect_error(h, ctx, _diff(ref, channel.pts + 1), 400, "PERSISTENT_TIMESTAMP_INVALID")
    await expect_error(h, ctx, _diff(ref, 0), 400, "PERSISTENT_TIMESTAMP_EMPTY")
    empty = await h.call(ctx, _diff(ref, channel.pts))
    assert isinstance(empty, types.updates.ChannelDifferenceEmpty)


async def test_edits_deletions_and_pins_move_pts_and_come_as_their_own_updates() -> None:
    h = Harness()
    ctx, channel, ref = await _setup(h, "events")
    a, b = _post(h, channel, "a"), _post(h, channel, "b")
    start = channel.pts
    c = _post(h, channel, "c")
    h.world.edit(channel.id, a, text="a2")
    h.world.pin(channel.id, b)
    h.world.delete_messages(channel.id, [b, c])
    assert channel.pts == start + 1 + 1 + 1 + 2  # deletion: pts_count = ids deleted
    answer = await h.call(ctx, _diff(ref, start))
    assert isinstance(answer, types.updates.ChannelDifference) and answer.final
    assert answer.new_messages == [] and answer.pts == channel.pts  # c is gone again
    edit, pin, delete = answer.other_updates
    assert isinstance(edit, types.UpdateEditChannelMessage)
    assert (edit.message.id, edit.message.message, edit.pts) == (a, "a2", start + 2)
    assert edit.message.edit_date
    assert isinstance(pin, types.UpdatePinnedChannelMessages) and pin.pinned
    assert (pin.messages, pin.pts) == ([b], start + 3)
    assert isinstance(delete, types.UpdateDeleteChannelMessages)
    assert (delete.messages, delete.pts, delete.pts_count) == ([b, c], start + 5, 2)
    bytes(answer)
    got = await h.call(ctx, functions.channels.GetMessagesRequest(ref, [types.InputMessageID(b)]))
    assert isinstance(got.messages[0], types.MessageEmpty)


async def test_every_rule_can_be_switched_off_for_the_old_world() -> None:
    h = Harness()
    rules = h.dispatcher.difference
    rules.too_long = rules.limit_invalid = rules.pts_invalid = rules.stream_edits = False
    ctx, channel, ref = await _setup(h, "oldworld")
    start = channel.pts
    ids = [_post(h, channel, str(i)) for i in range(5)]
    h.world.edit(channel.id, ids[0], text="x", stream=rules.stream_edits)
    assert channel.pts == start + 5  # the edit moved nothing
    sliced = await h.call(ctx, _diff(ref, start, limit=3))
    assert isinstance(sliced, types.updates.ChannelDifference) and not sliced.final
    assert [m.id for m in sliced.new_messages] == ids[:3] and sliced.pts == start + 3
    rest = await h.call(ctx, _diff(ref, sliced.pts, limit=500_000))
    assert [m.id for m in rest.new_messages] == ids[3:] and rest.final
    future = await h.call(ctx, _diff(ref, channel.pts + 10))
    assert isinstance(future, types.updates.ChannelDifferenceEmpty)


def test_control_api_makes_bulk_posts_edits_pins_deletes_and_switches_rules(tgemu) -> None:
    channel = tgemu.create_channel("Bulk", username=tgemu.unique("bulk"))
    cid, pts = channel["id"], channel["pts"]
    t0 = time.monotonic()
    bulk = tgemu.post_many(cid, 1000, date=1_700_000_000)
    assert (bulk["count"], bulk["id"] - bulk["first_id"]) == (1000, 999)
    edited = tgemu.edit(cid, bulk["first_id"], "changed", times=150_000)
    assert edited["text"] == "changed" and edited["channel_pts"] == pts + 1000 + 150_000
    assert time.monotonic() - t0 < 10  # a 100,000+ update gap is cheap to make
    assert tgemu.pin(cid, bulk["id"])["channel_pts"] == edited["channel_pts"] + 1
    gone = tgemu.delete_messages(cid, bulk["first_id"], bulk["first_id"] + 1)
    assert gone["channel_pts"] == edited["channel_pts"] + 3
    assert len(tgemu.messages(cid)) == 998
    before = tgemu.config()["difference"]
    assert before == {
        "too_long": True,
        "limit_invalid": True,
        "pts_invalid": True,
        "stream_edits": True,
        "too_long_messages": 20,
    }
    try:
        assert tgemu.config(difference={"too_long": False})["difference"]["too_long"] is False
    finally:
        tgemu.config(difference=before)
