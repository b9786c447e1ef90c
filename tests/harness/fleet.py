"""Worker "hosts" and the kill-and-join run of the fleet (botmgr/fleet/): shared by the
resilience test (tests/resilience/test_fleet_hosts.py) and its full-size benchmark
(bench/fleet.py).

A "host" is a local address Telegram connections leave from (BOTMGR_TG_LOCAL_ADDR):
tgemu sees 127.0.0.2 and 127.0.0.3 as two hosts and destroys any auth key used from
both at once, as Telegram does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from botmgr.fleet.keys import FleetKeys
from botmgr.models import Post, PostStatus
from botmgr.worker.app import make_celery
from tests.harness.env import REDIS_URL, settings_from
from tests.harness.flows import fleet, post
from tests.harness.processes import WorkerProcess
from tests.harness.stack import ServiceStack

HOSTS = ("127.0.0.2", "127.0.0.3")


def start_worker(running: ServiceStack, n: int, host: str, concurrency: int = 4) -> WorkerProcess:
    """Worker process ``n`` whose Telegram connections leave from ``host`` (not waited)."""
    env = {**running.env, "BOTMGR_TG_LOCAL_ADDR": host}
    worker = WorkerProcess(env, running.workdir / f"worker-{n}.log", concurrency=concurrency)
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


async def wait_until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"not within {within:g}s: {what}")


@dataclass
class KillAndJoin:
    """What ``kill_and_join`` did and saw."""

    channels: list[dict] = field(default_factory=list)  # tgemu channels, bound and active
    held: dict[int, int] = field(default_factory=dict)  # pid → bots, before the kill
    victim: WorkerProcess | None = None
    joined: WorkerProcess | None = None
    joined_held: int = 0  # bots the joined worker held when every post was sent
    enqueue_s: float = 0.0
    run_s: float = 0.0  # first enqueue → every post sent


async def kill_and_join(
    running: ServiceStack,
    workers: list[WorkerProcess],
    *,
    bots: int,
    channels_per_bot: int,
    posts: int,
    within: float,
    concurrency: int = 4,
    parallel: int = 1,
) -> KillAndJoin:
    """Bind ``bots`` × ``channels_per_bot`` channels, then post ``posts`` posts round robin
    over them through the API (``parallel`` at a time). Halfway, SIGKILL a worker that
    holds bots and start another on the first host. Returns once every post is sent
    (within ``within`` seconds) and the joined worker holds bots (10 s more)."""
    assert running.api is not None and running.emu is not None
    url = running.env["BOTMGR_DATABASE_URL"]
    seen = KillAndJoin()
    celery = make_celery(settings_from(running.env))
    async with httpx.AsyncClient(
        base_url=running.api.url, auth=running.api.auth, timeout=60
    ) as api:
        pairs = await fleet(api, running.emu, celery, bots, channels_per_bot)
        seen.channels = channels = [channel for _, channel in pairs]
        seen.held = bots_held(running)

        async def post_range(start: int, stop: int) -> None:
            for first in range(start, stop, parallel):
                await asyncio.gather(
                    *(
                        post(api, channels[i % len(channels)]["id"], f"post *{i}*")
                        for i in range(first, min(stop, first + parallel))
                    )
                )

        started = time.perf_counter()
        await post_range(0, posts // 2)
        seen.victim = next(w for w in workers if seen.held.get(w.process.pid, 0) > 0)
        seen.victim.kill()  # mid-run: some of its posts are queued or in flight
        seen.joined = start_worker(running, len(running.workers), HOSTS[0], concurrency)
        await asyncio.to_thread(seen.joined.wait_ready)
        await post_range(posts // 2, posts)
        seen.enqueue_s = time.perf_counter() - started

        async def all_sent() -> bool:
            return await sent_count(url) == posts

        await wait_until(all_sent, within, f"all {posts} posts sent")
        seen.run_s = time.perf_counter() - started
        joined_pid = seen.joined.process.pid

        async def joined_holds() -> bool:
            return bots_held(running).get(joined_pid, 0) > 0

        await wait_until(joined_holds, 10, "the joined worker holds bots")
        seen.joined_held = bots_held(running).get(joined_pid, 0)
    return seen
