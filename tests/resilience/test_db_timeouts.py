"""PostgreSQL's statement_timeout and lock_timeout on every connection the service makes
(the API's engine and the worker's, from BOTMGR_DB_*), and what a statement cut by
them is to the service: "busy" (db.is_busy), asked again later, never a hang."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from botmgr.app import create_app
from botmgr.db import is_busy, make_engine, worker_pool_size
from botmgr.settings import Settings
from botmgr.worker.runtime import worker_engine
from tests.harness.env import settings_from

pytestmark = pytest.mark.timeout(60)
LOCK_KEY = 0x7469_6D65  # an advisory lock no other code takes


async def shown(engine: AsyncEngine) -> tuple[str, str]:
    async with engine.connect() as conn:
        statement = (await conn.execute(text("SHOW statement_timeout"))).scalar_one()
        lock = (await conn.execute(text("SHOW lock_timeout"))).scalar_one()
    return statement, lock


@pytest.fixture
def settings(service_env: dict[str, str]) -> Settings:
    return settings_from(
        service_env
        | {"BOTMGR_DB_STATEMENT_TIMEOUT_SECONDS": "1.5", "BOTMGR_DB_LOCK_TIMEOUT_SECONDS": "0.5"}
    )


@pytest.fixture
async def worker_db(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = worker_engine(settings)
    yield engine
    await engine.dispose()


async def test_the_worker_and_the_api_connect_with_the_configured_timeouts(
    settings: Settings, worker_db: AsyncEngine
) -> None:
    assert await shown(worker_db) == ("1500ms", "500ms")
    expected = worker_pool_size(settings.worker_concurrency, settings.sweep_db_sessions)
    assert worker_db.pool.size() == expected  # the rule of botmgr/db.py, no overflow
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        assert await shown(app.state.engine) == ("1500ms", "500ms")


async def test_the_defaults_are_30_s_and_10_s(service_db: str) -> None:
    defaults = Settings.model_fields
    engine = make_engine(
        service_db,
        statement_timeout=defaults["db_statement_timeout_seconds"].default,
        lock_timeout=defaults["db_lock_timeout_seconds"].default,
    )
    try:
        assert await shown(engine) == ("30s", "10s")
    finally:
        await engine.dispose()


async def test_a_statement_past_its_timeout_is_cut_and_counts_as_busy(
    worker_db: AsyncEngine,
) -> None:
    started = time.monotonic()
    async with worker_db.connect() as conn:
        with pytest.raises(DBAPIError) as cut:
            await conn.execute(text("SELECT pg_sleep(5)"))
    assert is_busy(cut.value) and time.monotonic() - started < 4


async def test_a_lock_wait_past_lock_timeout_is_cut_and_counts_as_busy(
    worker_db: AsyncEngine,
) -> None:
    async with worker_db.connect() as holder, worker_db.connect() as waiter:
        await holder.execute(text(f"SELECT pg_advisory_lock({LOCK_KEY})"))
        try:
            with pytest.raises(DBAPIError) as cut:
                await waiter.execute(text(f"SELECT pg_advisory_lock({LOCK_KEY})"))
        finally:
            await holder.execute(text(f"SELECT pg_advisory_unlock({LOCK_KEY})"))
    assert is_busy(cut.value) and getattr(cut.value.orig, "sqlstate", None) == "55P03"


async def test_a_dropped_pool_costs_the_worker_one_failed_statement_not_one_per_connection(
    worker_db: AsyncEngine, service_db: str
) -> None:
    """The worker's engine pings no connection at checkout (a round trip per task): a
    connection PostgreSQL dropped fails its first statement (the task retries it), and
    that disconnect replaces every older connection of the pool, not only its own."""

    async def backend_pid() -> int:
        async with worker_db.connect() as conn:
            await conn.execute(text("SELECT pg_sleep(0.2)"))  # both held at once
            return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())

    old = set(await asyncio.gather(backend_pid(), backend_pid()))
    assert len(old) == 2
    admin = make_engine(service_db)
    try:
        async with admin.connect() as conn:
            for pid in old:
                await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await admin.dispose()
    with pytest.raises(DBAPIError) as dropped:
        async with worker_db.connect() as conn:
            await conn.execute(text("SELECT 1"))
    assert dropped.value.connection_invalidated
    new = set(await asyncio.gather(backend_pid(), backend_pid()))
    assert len(new) == 2 and not new & old
