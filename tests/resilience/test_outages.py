"""Redis, then PostgreSQL, restarted while the API serves light load: during each outage
the API answers 503 (never 500, never a hang), it serves again within 5 s of the restart,
and every POST /messages it accepted (202) is still queued afterwards.

Private redis-server and PostgreSQL instances: the shared ones serve other tests. Redis
keeps an append-only file as compose configures it, so its queue survives a restart.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from botmgr.models import Binding, BindingStatus, Channel, Post, PostStatus
from botmgr.tasks.names import QUEUE
from tests.harness.db import insert_bot, migrate
from tests.harness.env import make_env, settings_from
from tests.harness.processes import ApiProcess
from tests.harness.servers import PrivatePostgres, PrivateRedis

pytestmark = pytest.mark.timeout(150)
OUTAGE = 3.0  # seconds each dependency stays down
RECOVERY = 5.0  # the target: serving again this long after the restart


@dataclass
class Call:
    at: float
    route: str
    status: int  # 0: no answer (timeout or connection error)
    task_id: str | None = None


@dataclass
class Load:
    calls: list[Call] = field(default_factory=list)
    stop: bool = False

    def between(self, start: float, end: float) -> list[Call]:
        return [c for c in self.calls if start <= c.at < end]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[PrivateRedis, PrivatePostgres]]:
    rds, pg = PrivateRedis(tmp_path), PrivatePostgres()
    rds.start()
    try:
        pg.init()
        pg.start()
        yield rds, pg
    finally:
        pg.remove()
        rds.stop()


async def drive(client: httpx.AsyncClient, load: Load, channel_tg_id: int) -> None:
    """Light load: one read and one enqueue about every 50 ms."""
    n = 0
    while not load.stop:
        n += 1
        for route in ("GET /bots/", "POST /messages"):
            at = time.monotonic()
            try:
                if route == "GET /bots/":
                    response = await client.get("/bots/")
                else:
                    response = await client.post(
                        "/messages", json={"channel_id": channel_tg_id, "message": f"load {n}"}
                    )
                task_id = response.json().get("task_id") if response.status_code == 202 else None
                load.calls.append(Call(at, route, response.status_code, task_id))
            except httpx.HTTPError:
                load.calls.append(Call(at, route, 0))
        await asyncio.sleep(0.05)


def recovered_after(load: Load, route: str, restarted: float, until: float) -> float:
    """Seconds from the restart to the first success of ``route`` that stayed healthy."""
    later = [c for c in load.between(restarted, until) if c.route == route]
    for i, call in enumerate(later):
        if call.status in (200, 202) and all(c.status in (200, 202) for c in later[i:]):
            return call.at - restarted
    return float("inf")


def queued_task_ids(url: str, prefix: str) -> set[str]:
    client = redis.Redis.from_url(url)
    try:
        return {json.loads(raw)["headers"]["id"] for raw in client.lrange(prefix + QUEUE, 0, -1)}
    finally:
        client.close()


async def test_redis_then_postgres_restart_under_load(
    servers: tuple[PrivateRedis, PrivatePostgres], tmp_path: Path
) -> None:
    rds, pg = servers
    database_url = pg.dsn.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0]
    database_url += "/botmgr"
    engine = create_async_engine(
        pg.dsn.replace("postgresql://", "postgresql+asyncpg://"), isolation_level="AUTOCOMMIT"
    )
    async with engine.connect() as conn:
        await conn.exec_driver_sql("CREATE DATABASE botmgr")
    await engine.dispose()
    env = make_env(database_url, BOTMGR_REDIS_URL=rds.url)
    await asyncio.to_thread(migrate, env)

    engine = create_async_engine(database_url)
    async with AsyncSession(engine, expire_on_commit=False) as session:
        bot = await insert_bot(session, settings_from(env))
        channel = Channel(tg_id=1_000_000_001, title="Load", reference="-1001000000001")
        session.add(channel)
        await session.flush()
        session.add(Binding(bot_id=bot.id, channel_id=channel.id, status=BindingStatus.active))
        await session.commit()
    await engine.dispose()  # its connections would not survive the restart below

    api = ApiProcess(env, tmp_path / "api.log")
    load = Load()
    try:
        api.wait_ready()
        async with httpx.AsyncClient(base_url=api.url, auth=api.auth, timeout=10) as client:
            driver = asyncio.create_task(drive(client, load, channel.tg_id))
            await asyncio.sleep(1.5)

            redis_down = time.monotonic()
            rds.stop()
            await asyncio.sleep(OUTAGE)
            redis_starting = time.monotonic()
            rds.start()
            redis_up = time.monotonic()
            await asyncio.sleep(RECOVERY + 1)

            pg_down = time.monotonic()
            await asyncio.to_thread(pg.stop, "fast")
            await asyncio.sleep(OUTAGE)
            pg_starting = time.monotonic()
            await asyncio.to_thread(pg.start)
            pg_up = time.monotonic()
            await asyncio.sleep(RECOVERY + 1)
            load.stop = True
            await driver
    finally:
        api.stop()

    statuses = {c.status for c in load.calls}
    assert statuses <= {200, 202, 503}, (statuses, api.log()[-3000:])
    during_redis = load.between(redis_down + 0.3, redis_starting)
    # An enqueue caught mid-outage either fails fast (503) or, when Redis returns while
    # it retries, is accepted (202, and counted among the tasks that must be queued).
    enqueues = Counter(c.status for c in during_redis if c.route == "POST /messages")
    assert set(enqueues) <= {202, 503} and enqueues[503] > enqueues[202], enqueues
    assert {c.status for c in during_redis if c.route == "GET /bots/"} == {200}
    during_pg = load.between(pg_down + 0.5, pg_starting)
    assert during_pg and {c.status for c in during_pg} == {503}
    for route in ("GET /bots/", "POST /messages"):
        assert recovered_after(load, route, redis_up, pg_down) <= RECOVERY
        assert recovered_after(load, route, pg_up, float("inf")) <= RECOVERY

    accepted = {c.task_id for c in load.calls if c.status == 202}
    assert len(accepted) > 20
    assert accepted <= queued_task_ids(rds.url, env["BOTMGR_REDIS_PREFIX"])
    async with AsyncSession(engine) as session:
        rows = (await session.execute(select(Post.task_id, Post.status, Post.error))).all()
    await engine.dispose()
    assert accepted <= {row.task_id for row in rows}
    # A post refused with 503 after its row was written is failed, never left queued to
    # go out beside the caller's retry; only accepted posts are queued.
    assert {row.task_id for row in rows if row.status == PostStatus.queued} <= accepted
    refused = [row for row in rows if row.task_id not in accepted]
    assert refused and all(
        row.status == PostStatus.failed and "not scheduled" in row.error for row in refused
    ), refused
