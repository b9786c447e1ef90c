"""A post's counters in tgemu: views, forwards and reactions, and their history by age
(what channels.getMessages answers as the post gets older, moved along by backdating)."""

from __future__ import annotations

import time

from telethon.tl import functions, types

from tests.tgemu.helpers import Harness
from tests.tgemu.test_world_methods import login
from tgemu.world.models import CountsPoint


def counts(message: types.TypeMessage) -> tuple[int, int, int]:
    assert isinstance(message, types.Message)
    reactions = sum(r.count for r in message.reactions.results) if message.reactions else 0
    return message.views or 0, message.forwards or 0, reactions


async def test_counters_follow_the_history_by_age() -> None:
    h = Harness()
    bot, ctx = await login(h, "counting_bot")
    channel = h.world.create_channel("Counted", "counted_chan")
    h.world.set_admin(channel.id, bot.id, {"post_messages": True})
    now = int(time.time())
    post = h.world.post(channel, sender_id=channel.creator_id, text="x", entities=[], date=now)
    plain = h.world.post(channel, sender_id=channel.creator_id, text="y", entities=[], date=now)
    h.world.set_counts(channel.id, plain.id, views=7, forwards=2, reactions=3)
    history = [
        CountsPoint(age=86_400, views=900, forwards=12, reactions=40),
        CountsPoint(age=3_600, views=120, forwards=1, reactions=5),
    ]
    h.world.set_counts(channel.id, post.id, views=4, history=history)
    resolved = await h.call(ctx, functions.contacts.ResolveUsernameRequest("counted_chan"))
    ref = types.InputChannel(channel.id, resolved.chats[0].access_hash)

    async def read() -> list[tuple[int, int, int]]:
        ids = [types.InputMessageID(post.id), types.InputMessageID(plain.id)]
        got = await h.call(ctx, functions.channels.GetMessagesRequest(ref, ids))
        bytes(got)  # serializable with the reactions
        return [counts(m) for m in got.messages]

    # Younger than the first point: the plain counters.
    assert await read() == [(4, 0, 0), (7, 2, 3)]
    h.world.set_counts(channel.id, post.id, date=now - 3_601)  # an hour old
    assert (await read())[0] == (120, 1, 5)
    h.world.set_counts(channel.id, post.id, date=now - 86_401)  # a day old
    assert (await read())[0] == (900, 12, 40)
    h.world.set_counts(channel.id, post.id, history=[])
    assert (await read())[0] == (4, 0, 0)
