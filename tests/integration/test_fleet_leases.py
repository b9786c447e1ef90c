"""Per-bot ownership on a real Redis (botmgr/fleet/leases.py): one owner per bot, fair
shares, a dead worker's bots and queued tasks moving, hand-backs when a worker joins,
and a worker that cannot renew stopping before its lease can pass to another."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from botmgr.fleet.keys import FleetKeys, worker_queue
from botmgr.fleet.leases import HOPS, MAX_HOPS, Fleet
from botmgr.tasks.names import QUEUE
from botmgr.telegram.ownership import NotOwner
from tests.harness.env import REDIS_URL, drop_redis_prefix

pytestmark = pytest.mark.asyncio

MakeFleet = Callable[..., Fleet]


@pytest.fixture
async def make_fleet() -> AsyncIterator[MakeFleet]:
    keys = FleetKeys(f"botmgr-test-{uuid.uuid4().hex[:12]}:")
    made: list[Fleet] = []

    def make(name: str, ttl: float = 10.0, **options: object) -> Fleet:
        fleet = Fleet(Redis.from_url(REDIS_URL), keys, name, ttl=ttl, **options)  # type: ignore[arg-type]
        made.append(fleet)
        return fleet

    yield make
    for fleet in made:
        if fleet._task is not None:
            fleet._task.cancel()
        await fleet.redis.aclose()
    drop_redis_prefix(keys.prefix, REDIS_URL)


async def take(fleet: Fleet, bot_id: int) -> None:
    async with fleet.hold(bot_id):
        pass


async def test_one_owner_per_bot(make_fleet: MakeFleet) -> None:
    a, b = make_fleet("a"), make_fleet("b")
    await a.beat()
    await b.beat()
    await take(a, 1)
    with pytest.raises(NotOwner) as refused:
        await take(b, 1)
    assert refused.value.queue == worker_queue("a")
    assert a.holds(1) and not b.holds(1)
    await take(a, 1)  # the holder goes on using it


async def test_free_bots_are_shared_fairly(make_fleet: MakeFleet) -> None:
    a, b = make_fleet("a"), make_fleet("b")
    await a.beat()
    await b.beat()
    await a.beat()  # a now sees b
    sent_to: list[str] = []
    for bot_id in range(1, 11):  # every task reaches a first
        try:
            await take(a, bot_id)
        except NotOwner as exc:
            sent_to.append(exc.queue)
            await take(b, bot_id)  # forwarded: b has room
        await a.beat()
        await b.beat()
    assert len(a.held) == 5 and len(b.held) == 5
    assert set(sent_to) == {worker_queue("b")}


async def test_forwarded_too_often_takes_the_bot_anyway(make_fleet: MakeFleet) -> None:
    a, b = make_fleet("a"), make_fleet("b")
    await b.beat()
    await a.beat()
    await take(a, 1)
    await a.beat()
    with pytest.raises(NotOwner):
        await take(a, 2)  # over its share: b should take it
    HOPS.set(MAX_HOPS)
    try:
        await take(a, 2)  # but not if the task has bounced around long enough
    finally:
        HOPS.set(0)
    assert a.holds(2)


async def test_a_dead_workers_bots_and_queue_move(make_fleet: MakeFleet) -> None:
    a, b = make_fleet("a", ttl=1.0), make_fleet("b", ttl=1.0)
    await a.beat()
    await b.beat()
    await take(a, 7)
    lists = a.keys.queue_lists(worker_queue("a"))
    await a.redis.lpush(lists[0], "task-1", "task-2")
    # a stops beating (killed): after its ttl b retires it and takes what it had
    await asyncio.sleep(1.2)
    await b.beat()
    assert b.retired == 1
    assert await b.redis.lrange(b.keys.queue_lists(QUEUE)[0], 0, -1) == [b"task-2", b"task-1"]
    await take(b, 7)
    assert b.holds(7)
    # a message kombu restores into the dead queue later moves too
    await a.redis.lpush(lists[0], "restored")
    await b.beat()
    assert b.drained == 3


async def test_a_worker_that_cannot_renew_stops_first(make_fleet: MakeFleet) -> None:
    now = [0.0]
    a = make_fleet("a", ttl=2.0, clock=lambda: now[0])
    lost: list[int] = []

    async def on_lost(bot_id: int) -> None:
        lost.append(bot_id)

    a.on_lost = on_lost
    await a.beat()
    await take(a, 3)
    now[0] = 2.0 - a.margin - 0.01
    assert a.holds(3)
    now[0] = 2.0 - a.margin  # Redis keeps the lease until ≥ 2.0: a stops before
    assert not a.holds(3)
    await a.beat()
    assert lost == [3]


async def test_a_joining_worker_gets_bots_handed_back(make_fleet: MakeFleet) -> None:
    a = make_fleet("a")
    handed: list[int] = []

    async def on_lost(bot_id: int) -> None:
        handed.append(bot_id)

    a.on_lost = on_lost
    await a.beat()
    for bot_id in range(1, 7):
        await take(a, bot_id)
    b = make_fleet("b")
    await b.beat()
    async with a.hold(1):  # a bot in use is never handed back
        await a.beat()
        assert a.handed_back == 3 and 1 not in handed and len(a.held) == 3
    for bot_id in handed:
        await take(b, bot_id)  # free now, and b has room
    assert len(b.held) == 3


async def test_stopping_hands_everything_back(make_fleet: MakeFleet) -> None:
    a, b = make_fleet("a"), make_fleet("b")
    await a.beat()
    await b.beat()
    await take(a, 1)
    await a.redis.lpush(a.keys.queue_lists(a.queue)[0], "pending")
    await a.stop()
    await b.beat()
    await take(b, 1)  # at once: no wait for a's lease to run out
    assert await b.redis.lrange(b.keys.queue_lists(QUEUE)[0], 0, -1) == [b"pending"]


async def test_pacing_state_goes_with_the_bot(make_fleet: MakeFleet) -> None:
    a, b = make_fleet("a"), make_fleet("b")
    a.pace_of = lambda bot_id: {"bot": 123.0, "c77": 456.0}
    await a.beat()
    await b.beat()
    await take(a, 1)
    await a.stop()  # handed back: the state is exact
    async with b.hold(1) as handover:
        assert handover is not None and handover.pace == {"bot": 123.0, "c77": 456.0}
        assert handover.margin == 0.0
    async with b.hold(1) as again:
        assert again is None  # absorbed once, on the first call


async def test_a_dead_owners_pacing_state_counts_one_more_beat(make_fleet: MakeFleet) -> None:
    a, b = make_fleet("a", ttl=1.0), make_fleet("b", ttl=1.0)
    a.pace_of = lambda bot_id: {"bot": 1.0}
    await a.beat()
    await b.beat()
    await take(a, 1)
    await a.beat()  # the beat after a use writes the state
    await asyncio.sleep(1.2)  # then a dies
    await b.beat()
    async with b.hold(1) as handover:
        assert handover is not None and handover.pace == {"bot": 1.0}
        assert handover.margin == b.interval


async def test_a_fleet_wide_job_is_placed_with_the_owners_and_free_bots_even_out(
    make_fleet: MakeFleet,
) -> None:
    a, b = make_fleet("a"), make_fleet("b")
    assert await a.place([1, 2, 3]) is None  # alone: every bot may become a's
    await a.beat()
    await b.beat()
    await a.beat()  # a sees b
    await take(a, 1)
    await take(b, 3)
    await take(a, 2)
    await a.beat()  # the loads as of this heartbeat: a 2, b 1
    parts = await a.place([1, 2, 3, 4, 5, 6])
    assert parts is not None
    # Owners keep theirs; free bots go to the least loaded (a first on a tie): b, a, b.
    assert parts == {worker_queue("a"): [1, 2, 5], worker_queue("b"): [3, 4, 6]}
    assert await a.place([1, 2]) is None  # all a's own: swept here


async def test_a_bot_taken_is_marked_in_use_before_any_export(make_fleet: MakeFleet) -> None:
    # a dies right after taking the bot, before a beat exported anything: b still learns
    # that a's buckets may be spent, rather than starting with full ones.
    a, b = make_fleet("a", ttl=1.0), make_fleet("b", ttl=1.0)
    a.pace_of = lambda bot_id: {}
    await a.beat()
    await b.beat()
    await take(a, 1)
    await asyncio.sleep(1.2)
    await b.beat()
    async with b.hold(1) as handover:
        assert handover is not None and handover.died and handover.pace == {}
    await b.stop()  # handed back on purpose: the next owner gets it exactly
    c = make_fleet("c", ttl=1.0)
    await c.beat()
    async with c.hold(1) as exact:
        assert exact is not None and not exact.died and exact.margin == 0.0
