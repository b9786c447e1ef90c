"""SIGKILL the worker again and again while 300 posts flow: every post reaches its channel
exactly once (checked against tgemu's stored messages by random_id) and ends ``sent``."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from botmgr.models import Post
from botmgr.worker.app import make_celery
from tests.harness.client import api_client
from tests.harness.env import drop_redis_prefix, make_env, settings_from
from tests.harness.flows import delivered, fleet, post
from tests.harness.processes import WorkerProcess
from tests.harness.tgemu import TgEmu, spawn_tgemu

pytestmark = pytest.mark.timeout(180)
POSTS = 300
KILLS = 4


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[TgEmu]:
    # Flood limits off and a little latency: the kills, not the limits, are under test,
    # and every kill should catch sends in flight. (30 channels × 10 posts also stay
    # within the worker's own pacing burst.)
    with spawn_tgemu(tmp_path / "tgemu", "--no-rate-limits", "--latency-ms", "150") as running:
        yield running


async def test_every_post_exactly_once_across_worker_kills(
    emu: TgEmu, private_db: str, tmp_path: Path
) -> None:
    env = make_env(private_db, emu)
    celery = make_celery(settings_from(env))
    workers = [WorkerProcess(env, tmp_path / "worker-0.log", concurrency=4)]
    task_ids: list[str] = []
    try:
        workers[0].wait_ready()
        async with api_client(settings_from(env)) as api:
            channels = [c for _, c in await fleet(api, emu, celery, bots=3, channels_per_bot=10)]
            for i in range(POSTS):
                channel = channels[i % len(channels)]
                task_ids.append((await post(api, channel["id"], f"post **{i}**"))["task_id"])
        engine = create_async_engine(private_db)

        async def load() -> list[Post]:
            async with AsyncSession(engine) as session:
                return list(
                    (
                        await session.execute(select(Post).where(Post.task_id.in_(task_ids)))
                    ).scalars()
                )

        try:
            outstanding = []  # posts not yet sent when each kill struck
            for n in range(1, KILLS + 1):
                await asyncio.sleep(1.0)
                outstanding.append(sum(p.status == "queued" for p in await load()))
                workers[-1].kill()
                workers.append(WorkerProcess(env, tmp_path / f"worker-{n}.log", concurrency=4))
                await asyncio.to_thread(workers[-1].wait_ready)
            deadline = time.monotonic() + 90  # killed tasks come back after the 10 s timeout
            posts = await load()
            while any(p.status == "queued" for p in posts):
                assert time.monotonic() < deadline, "posts still queued"
                await asyncio.sleep(0.5)
                posts = await load()
        finally:
            await engine.dispose()
    finally:
        for worker in workers:
            worker.stop()
        drop_redis_prefix(env["BOTMGR_REDIS_PREFIX"])

    assert len(posts) == POSTS
    assert Counter(p.status for p in posts) == {"sent": POSTS}, workers[-1].log()[-3000:]
    sent = delivered(emu, channels)
    assert sum(sent.values()) == POSTS
    assert {p.random_id for p in posts} == set(sent)
    assert max(sent.values()) == 1
    assert min(outstanding) > 0, outstanding  # every kill struck with work in flight
