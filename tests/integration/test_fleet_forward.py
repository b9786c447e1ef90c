"""A task for a bot another worker owns is forwarded before any database work: the
worker checks the task's bot (the BOT_HEADER its publisher set) first, so a forward
costs a claim in Redis, not a transaction rolled back (the worker's own runtime, a real
Redis and database; the other owner is a Fleet of the same keys)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from botmgr.fleet.keys import FleetKeys, worker_queue
from botmgr.fleet.leases import Fleet
from botmgr.telegram.ownership import NotOwner
from botmgr.uow import BOT_HEADER, HOPS_HEADER, Job
from botmgr.worker.app import make_celery
from botmgr.worker.runtime import WorkerRuntime
from tests.harness.env import REDIS_URL, settings_from


@pytest.fixture
def runtime(service_env: dict[str, str]) -> Iterator[WorkerRuntime]:
    env = {**service_env, "BOTMGR_REDIS_PREFIX": f"botmgr-test-{uuid.uuid4().hex[:12]}:"}
    settings = settings_from(env)
    made = WorkerRuntime(settings, make_celery(settings), "me.1.aaaaaa")
    made.start()
    yield made
    made.stop()


async def other_owner_takes(prefix: str, bot_id: int) -> None:
    other = Fleet(Redis.from_url(REDIS_URL), FleetKeys(prefix), "other.2.bbbbbb")
    try:
        await other.beat()
        await other.claim(bot_id)
    finally:
        await other.redis.aclose()


def test_another_workers_bot_is_forwarded_before_the_unit_opens(runtime: WorkerRuntime) -> None:
    asyncio.run(other_owner_takes(runtime.settings.redis_prefix, 7))
    opened: list[int] = []

    async def work(unit: object, rt: WorkerRuntime) -> str:
        opened.append(1)
        return "done"

    with pytest.raises(NotOwner) as refused:
        runtime.run_unit(work, bot=7)
    assert refused.value.queue == worker_queue("other.2.bbbbbb")
    assert opened == []  # no session, no transaction
    assert runtime.run_unit(work, bot=8) == "done"  # a free bot: taken here, then run
    assert runtime.owner.holds(8) and opened == [1]


def test_a_jobs_bot_and_hops_travel_as_headers() -> None:
    job = Job("t", [1], "id", bot=7, hops=2)
    assert job.headers() == {HOPS_HEADER: 2, BOT_HEADER: 7}
    assert Job("t", [1], "id").headers() == {}
