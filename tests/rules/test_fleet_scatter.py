"""A fleet-wide job (the rights sweep, the daily collection) over bots that several
worker processes own: each owner's part becomes one task on its queue, sent when the
job's unit commits, and Telegram is not asked by the process that received the job."""

from __future__ import annotations

from botmgr.models import Binding, Bot
from botmgr.tasks.names import CHECK_BINDINGS, COLLECT_STATS
from tests.rules.conftest import DAY, World


async def bound(world: World, bots: int, per_bot: int) -> list[tuple[Bot, list[int]]]:
    made = []
    for _ in range(bots):
        bot, token = await world.bot()
        ids = []
        for _ in range(per_bot):
            channel = world.fake.add_channel()
            world.fake.grant(channel, token)
            ids.append((await world.binding(bot, channel)).id)
        made.append((bot, ids))
    return made


async def test_each_owner_gets_its_bindings_in_one_task(world: World) -> None:
    (a, a_ids), (b, b_ids), (c, c_ids) = await bound(world, 3, 2)
    world.fake.placement = {"q.mine": [a.id], "q.other": [b.id, c.id]}
    report = await world.sweep()
    assert report.checked == 0 and not world.fake.calls  # Telegram not asked here
    jobs = {j.queue: j.args[0] for j in world.publisher.sent if j.name == CHECK_BINDINGS}
    assert jobs == {"q.mine": sorted(a_ids), "q.other": sorted(b_ids + c_ids)}
    assert report.body()["moved"] == 6


async def test_all_here_is_swept_here(world: World) -> None:
    (_, ids), *_ = await bound(world, 1, 3)
    world.fake.placement = None  # no fleet, or every bot this process's
    report = await world.sweep()
    assert report.checked == len(ids) and report.body()["moved"] == 0
    assert not [j for j in world.publisher.sent if j.name == CHECK_BINDINGS]


async def test_a_part_is_swept_where_it_lands(world: World) -> None:
    (a, a_ids), (b, _) = await bound(world, 2, 2)
    world.fake.placement = {"q.mine": [a.id], "q.other": [b.id]}
    report = await world.sweep(binding_ids=a_ids)  # the part CHECK_BINDINGS carries
    assert report.checked == len(a_ids) and report.body()["moved"] == 0


async def test_the_daily_collection_is_placed_the_same_way(world: World) -> None:
    (a, a_ids), (b, b_ids) = await bound(world, 2, 2)
    world.fake.placement = {"q.mine": [a.id], "q.other": [b.id]}
    report = await world.collect()
    assert report.collected == 0 and not world.fake.calls
    parts = {j.queue: j.kwargs for j in world.publisher.sent if j.name == COLLECT_STATS}
    channels = {q: kw["channel_ids"] for q, kw in parts.items()}
    assert {q: kw["day"] for q, kw in parts.items()} == dict.fromkeys(parts, DAY.isoformat())
    mine = sorted([(await world.get(Binding, i)).channel_id for i in a_ids])
    theirs = sorted([(await world.get(Binding, i)).channel_id for i in b_ids])
    assert channels == {"q.mine": mine, "q.other": theirs}
    # A part is collected where it lands: those channels only, here.
    part = await world.collect(channel_ids=channels["q.mine"])
    assert part.started_following == 2 and not part.moved
