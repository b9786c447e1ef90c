"""Two worker "hosts" (Telegram connections from 127.0.0.2 and 127.0.0.3, so tgemu sees
two source addresses and destroys any auth key used from both at once) with two worker
processes each, against one Redis, one PostgreSQL and one tgemu: every bot has exactly
one owner, so no key is ever duplicated, and every post goes out exactly once — also
when a worker is SIGKILLed mid-run (its bots move to the others) and when a worker is
added mid-run (it is handed a share of the bots).

Short timeouts stand in for production's: leases of 3 s, visibility 10 s (a killed
worker's unacknowledged tasks come back after it).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from botmgr.fleet.keys import FleetKeys
from botmgr.models import Post, PostStatus
from botmgr.worker.app import make_celery
from tests.harness.env import REDIS_URL, settings_from
from tests.harness.flows import delivered, fleet, post
from tests.harness.processes import WorkerProcess
from tests.harness.stack import ServiceStack, service_stack

pytestmark = pytest.mark.timeout(240)
HOSTS = ("127.0.0.2", "127.0.0.3")
BOTS, CHANNELS_PER_BOT, POSTS = 8, 2, 96  # 6 a channel: inside its burst of 10


def start_worker(running: ServiceStack, n: int, host: str) -> WorkerProcess:
    env = {**running.env, "BOTMGR_TG_LOCAL_ADDR": host}
    worker = WorkerProcess(env, running.workdir / f"worker-{n}.log", concurrency=4)
    running.workers.append(worker)
    return worker


def bots_held(running: ServiceStack) -> dict[int, int]:
    """pid → bots its worker holds now (fleet:load; worker ids carry the pid)."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        load = client.hgetall(FleetKeys(running.env["BOTMGR_REDIS_PREFIX"]).load)
    finally:
        client.close()
    return {int(w.decode().split(".")[-2]): int(n) for w, n in load.items()}


async def sent_count(url: str) -> int:
    engine = create_async_engine(url)
    try:
        async with AsyncSession(engine) as session:
            stmt = select(func.count()).select_from(Post).where(Post.status == PostStatus.sent)
            return int(await session.scalar(stmt) or 0)
    finally:
        await engine.dispose()


async def wait_until(check: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"not within {within:g}s: {what}")


def test_two_hosts_one_owner_per_bot_through_a_kill_and_a_join(tmp_path: Path) -> None:
    with service_stack(
        tmp_path,
        BOTMGR_FLEET_LEASE_SECONDS="3",
        BOTMGR_CELERY_VISIBILITY_TIMEOUT="10",
        BOTMGR_RETRY_UNREACHABLE_SECONDS="1",
    ) as running:
        assert running.emu is not None
        workers = [start_worker(running, n, HOSTS[n % 2]) for n in range(4)]
        for worker in workers:
            worker.wait_ready()
        victim, joined, held = asyncio.run(scenario(running, workers))
        copies: Counter[int] = delivered(running.emu, running.channels)  # type: ignore[attr-defined]
        metrics = running.emu.metrics()
        logs = "".join(w.log() for w in running.workers if w is not victim)
    assert sum(copies.values()) == POSTS and set(copies.values()) == {1}  # once each
    assert metrics["auth_key_duplicated"] == 0, metrics
    assert metrics["flood_waits"] == 0, metrics
    assert held[victim.process.pid] > 0  # it had bots to lose, and they moved:
    assert "stopped beating; its bots are free" in logs
    assert joined.process.pid not in held  # started after: every bot it holds came to it


async def scenario(
    running: ServiceStack, workers: list[WorkerProcess]
) -> tuple[WorkerProcess, WorkerProcess, dict[int, int]]:
    assert running.api is not None and running.emu is not None
    emu, url = running.emu, running.env["BOTMGR_DATABASE_URL"]
    celery = make_celery(settings_from(running.env))
    async with httpx.AsyncClient(
        base_url=running.api.url, auth=running.api.auth, timeout=60
    ) as api:
        pairs = await fleet(api, emu, celery, BOTS, CHANNELS_PER_BOT)
        channels = [channel for _, channel in pairs]
        running.channels = channels  # type: ignore[attr-defined]
        held = bots_held(running)
        assert sum(held.values()) == BOTS and max(held.values()) <= BOTS // 4 + 1, held

        async def post_range(start: int, stop: int) -> None:
            for i in range(start, stop):
                await post(api, channels[i % len(channels)]["id"], f"post *{i}*")

        await post_range(0, POSTS // 2)
        victim = next(w for w in workers if held.get(w.process.pid, 0) > 0)
        victim.kill()  # mid-run: some of its posts are queued or in flight
        joined = start_worker(running, 4, HOSTS[0])
        await asyncio.to_thread(joined.wait_ready)
        await post_range(POSTS // 2, POSTS)

        async def all_sent() -> bool:
            return await sent_count(url) == POSTS

        await wait_until(all_sent, 90, f"all {POSTS} posts sent")

        async def joined_holds() -> bool:
            return bots_held(running).get(joined.process.pid, 0) > 0

        await wait_until(joined_holds, 10, "the joined worker holds bots")
    return victim, joined, held
