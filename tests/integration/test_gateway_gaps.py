"""TelethonGateway against tgemu's strict channel difference: the bot limit (no
LIMIT_INVALID), a TooLong gap read back by id, edits/deletions in the stream, and
PERSISTENT_TIMESTAMP_INVALID restarting from getFullChannel's pts."""

from __future__ import annotations

from typing import Any

import pytest

from botmgr.telegram.gateway import GAP_READ_MAX
from botmgr.telegram.telethon_gateway import TelethonGateway
from tests.integration.test_gateway import (
    admin_channel,
    gateway,
    make_gateway,
    new_bot,
    store,
)

__all__ = ["gateway", "make_gateway", "store"]  # fixtures, used by name

pytestmark = pytest.mark.timeout(60)


async def test_a_gap_past_100000_updates_is_read_back_by_id(
    tgemu: Any, gateway: TelethonGateway
) -> None:
    bot, account = await new_bot(tgemu, gateway)
    channel, ref = await admin_channel(tgemu, bot)
    cid = channel["id"]
    start = await gateway.channel_feed(account, ref, pts=None)
    known = tgemu.post(cid, "known")
    seen = await gateway.channel_feed(account, ref, pts=start.pts)
    assert [p.id for p in seen.posts] == [known["id"]] and seen.complete
    bulk = tgemu.post_many(cid, 30, "in the gap")  # more than TooLong's latest 20
    tgemu.edit(cid, known["id"], "edited", times=100_001)
    gap = list(range(bulk["first_id"], bulk["id"] + 1))

    feed = await gateway.channel_feed(account, ref, pts=seen.pts, after_id=known["id"])
    assert [p.id for p in feed.posts] == gap and feed.complete
    assert feed.pts == tgemu.channel(cid)["pts"]
    blind = await gateway.channel_feed(account, ref, pts=seen.pts)  # where would it start?
    assert not blind.complete and [p.id for p in blind.posts] == gap[-20:]
    errors = tgemu.metrics()["errors"]
    assert not any(k.startswith("updates.getChannelDifference LIMIT") for k in errors)


async def test_a_gap_wider_than_the_id_read_is_incomplete(
    tgemu: Any, gateway: TelethonGateway
) -> None:
    bot, account = await new_bot(tgemu, gateway)
    channel, ref = await admin_channel(tgemu, bot)
    start = await gateway.channel_feed(account, ref, pts=None)
    known = tgemu.post(channel["id"], "known")
    seen = await gateway.channel_feed(account, ref, pts=start.pts)
    tgemu.post_many(channel["id"], GAP_READ_MAX + 1)
    tgemu.edit(channel["id"], known["id"], times=100_001)
    feed = await gateway.channel_feed(account, ref, pts=seen.pts, after_id=known["id"])
    assert not feed.complete and len(feed.posts) == 20


async def test_edits_pins_and_deletions_come_through_the_stream(
    tgemu: Any, gateway: TelethonGateway
) -> None:
    bot, account = await new_bot(tgemu, gateway)
    channel, ref = await admin_channel(tgemu, bot)
    cid = channel["id"]
    start = await gateway.channel_feed(account, ref, pts=None)
    a, b, c = (tgemu.post(cid, text)["id"] for text in "abc")
    first = await gateway.channel_feed(account, ref, pts=start.pts)
    tgemu.edit(cid, a, "a2")
    tgemu.pin(cid, b)
    tgemu.delete_messages(cid, c)
    feed = await gateway.channel_feed(account, ref, pts=first.pts)
    assert (feed.posts, feed.deleted, feed.complete) == ([], [c], True)
    assert feed.pts == first.pts + 3
    assert await gateway.get_views(account, ref, [a, b, c]) == {a: 0, b: 0}


async def test_persistent_timestamp_invalid_restarts_from_the_full_channel(
    tgemu: Any, gateway: TelethonGateway
) -> None:
    bot, account = await new_bot(tgemu, gateway)
    channel, ref = await admin_channel(tgemu, bot)
    tgemu.post(channel["id"], "x")
    now = tgemu.channel(channel["id"])["pts"]
    feed = await gateway.channel_feed(account, ref, pts=now + 50)
    assert (feed.pts, feed.posts, feed.complete) == (now, [], False)
