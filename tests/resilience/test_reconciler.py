"""Nothing lost, nothing posted twice, with real processes (worker, beat, API, tgemu):
the API killed between its commit and the publish, Redis flushed under queued posts, the
database failing inside a send, a long flood wait and a SIGKILLed worker. Every post ends
in its channel exactly once (by random_id) or ``failed`` with a reason; none stays
``queued`` after two reconciler periods past its grace.

Short timeouts stand in for production's: visibility 5 s, countdowns ≤ 2 s, the
reconciler every 2 s with a grace of 4 s.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from celery import Celery
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from botmgr.models import Post, PostStatus
from botmgr.worker.app import make_celery
from tests.harness.client import api_client
from tests.harness.env import SHORT_WAITS, drop_redis_prefix, make_env, settings_from
from tests.harness.flows import delivered, fleet, post
from tests.harness.processes import ApiProcess, BeatProcess, WorkerProcess, running
from tests.harness.tgemu import TgEmu

pytestmark = pytest.mark.timeout(180)
SHORT = SHORT_WAITS
SETTLED = 4 + 2 * 2 + 10  # grace + two periods + the sends themselves


@pytest.fixture
async def engine(private_db: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(private_db)
    yield engine
    await engine.dispose()


async def posts_of(engine: AsyncEngine, task_ids: list[str]) -> list[Post]:
    async with AsyncSession(engine) as session:
        stmt = select(Post).where(Post.task_id.in_(task_ids)).order_by(Post.id)
        return list((await session.execute(stmt)).scalars())


async def settle(engine: AsyncEngine, task_ids: list[str], within: float) -> list[Post]:
    """The posts once none is queued; fails if one still is after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        rows = await posts_of(engine, task_ids)
        if rows and all(p.status != PostStatus.queued for p in rows):
            return rows
        assert time.monotonic() < deadline, [(p.id, p.status, p.error) for p in rows]
        await asyncio.sleep(0.25)


@contextmanager
def worker_and_beat(env: dict[str, str], tmp_path: Path) -> Iterator[WorkerProcess]:
    """A worker and beat (so the reconciler runs every 2 s); the worker, to read its log."""
    with (
        running(WorkerProcess(env, tmp_path / "worker.log", concurrency=2)) as worker,
        running(BeatProcess(env, tmp_path / "beat.log")),
    ):
        yield worker


def exactly_once(emu: TgEmu, channels: list[dict], rows: list[Post]) -> None:
    counts = delivered(emu, channels)
    for row in rows:
        if row.status == PostStatus.sent:
            assert counts[row.random_id] == 1, (row.id, counts[row.random_id])
        else:
            assert row.status == PostStatus.failed and row.error, row.id
            assert counts[row.random_id] == 0


async def test_posts_left_without_a_task_are_sent_once(
    tgemu: TgEmu, private_db: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    """The API killed between commit and publish; then Redis flushed under queued posts."""
    env = make_env(private_db, tgemu, **SHORT)
    settings = settings_from(env)
    celery = make_celery(settings)
    try:
        with running(WorkerProcess(env, tmp_path / "setup.log", concurrency=2)):
            async with api_client(settings) as api:
                pairs = await fleet(api, tgemu, celery, bots=1, channels_per_bot=2)
        channels = [c for _, c in pairs]
        # An API process that dies the moment it would publish: its unit has committed.
        with running(DyingApi(env, tmp_path / "dying-api.log")) as dying:
            async with httpx.AsyncClient(base_url=dying.url, auth=dying.auth) as client:
                with pytest.raises(httpx.TransportError):
                    await client.post(
                        "/messages", json={"channel_id": channels[0]["id"], "message": "orphan"}
                    )
        async with AsyncSession(engine) as session:
            orphan = (
                await session.execute(select(Post).where(Post.markdown == "orphan"))
            ).scalar_one()
        assert orphan.status == PostStatus.queued
        # Posts accepted with no worker running, then Redis loses every queued task.
        async with api_client(settings) as api:
            accepted = [await post(api, channels[i % 2]["id"], f"flushed {i}") for i in range(6)]
        drop_redis_prefix(env["BOTMGR_REDIS_PREFIX"])
        task_ids = [orphan.task_id, *(a["task_id"] for a in accepted)]
        with worker_and_beat(env, tmp_path):
            rows = await settle(engine, task_ids, SETTLED + 10)
        assert all(r.status == PostStatus.sent for r in rows)
        exactly_once(tgemu, channels, rows)
    finally:
        drop_redis_prefix(env["BOTMGR_REDIS_PREFIX"])


class DyingApi(ApiProcess):
    """``botmgr api`` whose process exits (no cleanup, no compensation) at the first
    publish: what a crash between the unit's commit and its publish leaves behind."""

    def command(self, loglevel: str) -> list[str]:
        code = (
            "import os, sys, botmgr.uow as uow\n"
            "async def die(self, job): os._exit(9)\n"
            "uow.Publisher.publish = die\n"
            "from botmgr.cli import main\n"
            f"sys.argv = ['botmgr', '--loglevel', {loglevel!r}, 'api', '--port', '{self.port}']\n"
            "main()\n"
        )
        return [sys.executable, "-c", code]


async def test_a_database_failing_inside_a_send_posts_once(
    tgemu: TgEmu, private_db: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    """The commit that records ``sent`` fails twice after Telegram took the message (a
    trigger; a sequence counts the failures across the rolled-back transactions)."""
    env = make_env(private_db, tgemu, **SHORT)
    settings = settings_from(env)
    celery = make_celery(settings)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE SEQUENCE IF NOT EXISTS sent_failures"))
        await conn.execute(
            text(
                "CREATE OR REPLACE FUNCTION fail_sent() RETURNS trigger AS $$ BEGIN "
                "IF NEW.status = 'sent' AND NEW.markdown LIKE 'db-fault%' "
                "AND nextval('sent_failures') <= 2 THEN "
                "RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            )
        )
        await conn.execute(text("DROP TRIGGER IF EXISTS fail_sent ON posts"))
        await conn.execute(
            text(
                "CREATE TRIGGER fail_sent BEFORE UPDATE ON posts "
                "FOR EACH ROW EXECUTE FUNCTION fail_sent()"
            )
        )
    try:
        with worker_and_beat(env, tmp_path) as worker:
            async with api_client(settings) as api:
                [(_, channel)] = await fleet(api, tgemu, celery, bots=1, channels_per_bot=1)
                accepted = await post(api, channel["id"], "db-fault **once**")
                rows = await settle(engine, [accepted["task_id"]], SETTLED)
            assert worker.log().count("database unavailable") >= 2
        [row] = rows
        assert row.status == PostStatus.sent
        exactly_once(tgemu, [channel], rows)
        assert len(tgemu.messages(channel["id"])) == 1
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DROP TRIGGER IF EXISTS fail_sent ON posts"))
        drop_redis_prefix(env["BOTMGR_REDIS_PREFIX"])


async def test_a_long_flood_wait_is_stored_and_sent_once_after_it(
    tgemu: TgEmu, private_db: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    """FLOOD_WAIT 12 s — longer than the visibility timeout (5 s) and the longest
    countdown (2 s): the wait is the post's row, the task is not in the broker meanwhile
    (no redelivery), and the reconciler publishes it when due."""
    env = make_env(private_db, tgemu, **SHORT)
    settings = settings_from(env)
    celery = make_celery(settings)
    try:
        with worker_and_beat(env, tmp_path) as worker:
            async with api_client(settings) as api:
                [(bot, channel)] = await fleet(api, tgemu, celery, bots=1, channels_per_bot=1)
                tgemu.add_fault("messages.sendMessage", "FLOOD_WAIT_12", bot_id=bot["id"])
                started = time.monotonic()
                accepted = await post(api, channel["id"], "after the wait")
                task_id = accepted["task_id"]
                await asyncio.sleep(4)
                [waiting] = await posts_of(engine, [task_id])
                assert waiting.status == PostStatus.queued and waiting.dispatched_at is None
                assert waiting.not_before is not None and waiting.attempts == 1
                state = (await api.get(f"/tasks/{task_id}")).json()["task_status"]
                assert state == "RETRY"
                rows = await settle(engine, [task_id], 12 + SETTLED)
                elapsed = time.monotonic() - started
                await asyncio.sleep(6)  # a visibility timeout more: nothing comes back
            received = worker.log().count(f"[{task_id}] received")
        [row] = rows
        assert row.status == PostStatus.sent and elapsed >= 12
        exactly_once(tgemu, [channel], rows)
        assert received == 2, worker.log()[-3000:]  # the first try, and once when due
    finally:
        drop_redis_prefix(env["BOTMGR_REDIS_PREFIX"])


async def test_a_killed_workers_task_is_back_within_the_visibility_timeout(
    tgemu: TgEmu, private_db: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    # The new worker takes the bot from an owner that died, so it counts the channel's
    # bucket as spent (clients.Pacer): the send waits one channel step (~3 s), a retry
    # countdown here — no beat runs to publish a stored wait.
    env = make_env(private_db, tgemu, **{**SHORT, "BOTMGR_MAX_COUNTDOWN_SECONDS": "5"})
    settings = settings_from(env)
    celery: Celery = make_celery(settings)
    workers = [WorkerProcess(env, tmp_path / "worker-0.log", concurrency=2)]
    try:
        workers[0].wait_ready()
        async with api_client(settings) as api:
            [(_, channel)] = await fleet(api, tgemu, celery, bots=1, channels_per_bot=1)
            tgemu.config(latency_ms=4000)  # the send is in flight when the kill strikes
            try:
                accepted = await post(api, channel["id"], "survives a kill")
                task_id = accepted["task_id"]
                deadline = time.monotonic() + 20
                while f"[{task_id}] received" not in workers[0].log():
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.1)
                workers[0].kill()
                killed = time.monotonic()
                tgemu.config(latency_ms=0)
                workers.append(WorkerProcess(env, tmp_path / "worker-1.log", concurrency=2))
                await asyncio.to_thread(workers[1].wait_ready)
                deadline = time.monotonic() + 30
                while f"[{task_id}] received" not in workers[1].log():
                    assert time.monotonic() < deadline, "the task never came back"
                    await asyncio.sleep(0.1)
                back = time.monotonic() - killed
            finally:
                tgemu.config(latency_ms=0)
        rows = await settle(engine, [task_id], 20)
        # Visibility 5 s, checked every 2 s, plus the new worker's start.
        assert back < 5 + 2 + 10, back
        exactly_once(tgemu, [channel], rows)
        assert rows[0].status == PostStatus.sent
    finally:
        for worker in workers:
            worker.stop()
        drop_redis_prefix(env["BOTMGR_REDIS_PREFIX"])
