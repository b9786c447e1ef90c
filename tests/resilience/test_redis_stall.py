"""A Redis that stops answering without refusing (SIGSTOP: its port still accepts
connections, nothing replies) against a real ``botmgr api`` process: POST /messages
answers 503 with a JSON message within BOTMGR_REDIS_TIMEOUT_SECONDS (+ a margin), the
post it recorded is failed (not scheduled, so posting again is safe), and the reads that
need no Redis go on: GET /bots/, GET /channels/, and /healthz, which says Redis is
unreachable. After SIGCONT posting works again.

A private redis-server, so stopping it stalls no other test."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from botmgr.models import Binding, BindingStatus, Channel, Post, PostStatus
from botmgr.settings import Settings
from tests.harness.db import insert_bot
from tests.harness.env import make_env, settings_from
from tests.harness.processes import ApiProcess, running
from tests.harness.servers import PrivateRedis

pytestmark = pytest.mark.timeout(120)
TIMEOUT = Settings.model_fields["redis_timeout_seconds"].default  # the default: 3 s
MARGIN = 2.0  # the compensation's transaction, the HTTP round trip, a loaded machine


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def seed(database_url: str, env: dict[str, str]) -> int:
    """A bot with one active binding; the channel's Telegram id."""
    engine = create_async_engine(database_url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            bot = await insert_bot(session, settings_from(env))
            channel = Channel(tg_id=1_000_000_013, title="Stall", reference="-1001000000013")
            session.add(channel)
            await session.flush()
            session.add(Binding(bot_id=bot.id, channel_id=channel.id, status=BindingStatus.active))
            await session.commit()
            return channel.tg_id
    finally:
        await engine.dispose()


async def timed(call: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await call
    return response, time.monotonic() - started


async def test_a_stopped_redis_makes_posts_503_in_time_while_reads_go_on(
    redis_server: PrivateRedis, private_db: str, tmp_path: Path
) -> None:
    env = make_env(private_db, BOTMGR_REDIS_URL=redis_server.url)
    channel_id = await seed(private_db, env)
    message = {"channel_id": channel_id, "message": "while Redis sleeps"}
    assert redis_server.process is not None
    with running(ApiProcess(env, tmp_path / "api.log")) as api:
        async with httpx.AsyncClient(base_url=api.url, auth=api.auth, timeout=30) as client:
            # Before: the API has a live broker connection, the stall's worst case.
            assert (await client.post("/messages", json=message)).status_code == 202
            os.kill(redis_server.process.pid, signal.SIGSTOP)
            try:
                for _ in range(2):  # the live connection, then a new one to a mute port
                    response, took = await timed(client.post("/messages", json=message))
                    assert response.status_code == 503, response.text
                    assert "not scheduled" in response.json()["message"]
                    assert took <= TIMEOUT + MARGIN, took
                for route in ("/bots/", "/channels/"):
                    response, took = await timed(client.get(route))
                    assert response.status_code == 200 and took < MARGIN, (route, took)
                response, took = await timed(client.get("/healthz"))
                assert response.status_code == 503 and took <= TIMEOUT + MARGIN
                health = response.json()
                assert health["database"] == "ok" and health["redis"].startswith("unreachable")
            finally:
                os.kill(redis_server.process.pid, signal.SIGCONT)
            for _ in range(50):  # serving again once Redis answers
                response = await client.post("/messages", json=message)
                if response.status_code == 202:
                    break
                await asyncio.sleep(0.2)
            assert response.status_code == 202, response.text
    engine = create_async_engine(private_db)
    try:
        async with AsyncSession(engine) as session:
            rows = (await session.execute(select(Post.status, Post.error))).all()
    finally:
        await engine.dispose()
    # Each post answered 503 was failed by its compensation, so it can never go out
    # beside the caller's retry (even if the stalled send reaches Redis after SIGCONT).
    failed = [r for r in rows if r.status == PostStatus.failed]
    assert len(failed) >= 2 and all("not scheduled" in (r.error or "") for r in failed)
