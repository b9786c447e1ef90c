"""The rotation's edge rules, in process on a database of its own: a row a writer holds
past the patience is reported (never waited for), a secret no key opens is named, a
second run finishes what the first left; which processes count as running writers."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from redis.asyncio import Redis

from botmgr.bots.rotation import rotate_secrets
from botmgr.db import make_engine
from botmgr.key_writers import KeyAnnouncer, live_writers, writers_key
from botmgr.secret_keys import Keyring, generate_key
from botmgr.security import Cipher
from tests.harness.env import REDIS_URL, drop_redis_prefix
from tests.security.test_key_rotation import pg, seed

pytestmark = pytest.mark.timeout(60)


async def test_held_and_unreadable_rows_are_reported_and_a_rerun_finishes(
    private_db: str,
) -> None:
    a, b, foreign = generate_key(), generate_key(), generate_key()
    await seed(private_db, Cipher(a.encode()), 30)
    await seed(private_db, Cipher(foreign.encode()), 1)
    cipher = Cipher(Keyring.from_material(b, [a]))
    conn = await asyncpg.connect(pg(private_db))
    engine = make_engine(private_db, pool_size=1, max_overflow=0)
    try:
        unreadable = await conn.fetchval("SELECT max(id) FROM bots")
        writer = conn.transaction()
        await writer.start()
        held = await conn.fetchval("SELECT id FROM bots ORDER BY id LIMIT 1 FOR UPDATE")
        started = time.monotonic()
        first = await rotate_secrets(engine, cipher, batch=7, retry_pause=0.1, patience=0.5)
        assert time.monotonic() - started < 5  # not waiting for the writer
        await writer.rollback()
        assert first.bots == first.scanned + 1 == 31
        assert first.held == [held] and first.retried == 1
        assert first.unreadable == [unreadable]
        assert first.rotated == 2 * 29 and first.current == 0
        assert first.not_current == 4  # the held row's token and session, the foreign ones

        second = await rotate_secrets(engine, cipher, batch=7)
        assert second.rotated == 2 and second.current == 2 * 29
        assert second.held == [] and second.unreadable == [unreadable]
        assert second.not_current == 2
    finally:
        await engine.dispose()
        await conn.close()


@pytest.fixture
async def redis() -> AsyncIterator[tuple[Redis, str]]:
    prefix = f"botmgr-test-{uuid.uuid4().hex[:12]}:"
    client = Redis.from_url(REDIS_URL)
    yield client, prefix
    await client.aclose()
    drop_redis_prefix(prefix)


async def test_writers_announce_until_they_stop_or_their_announcement_ends(
    redis: tuple[Redis, str],
) -> None:
    client, prefix = redis
    api = KeyAnnouncer(client, prefix, "aaaa1111", "api.host.1")
    worker = KeyAnnouncer(client, prefix, "bbbb2222", "host.2.abc")
    api.start()
    await api.announce()  # what the started task does first, awaited here
    await worker.announce()
    # A process killed a while ago: its announcement ended, it is not running.
    seconds, _ = await client.time()
    await client.zadd(writers_key(prefix), {"cccc3333|killed": (int(seconds) - 5) * 1000})
    assert await live_writers(client, prefix) == {
        "api.host.1": "aaaa1111",
        "host.2.abc": "bbbb2222",
    }
    await api.stop()
    assert await live_writers(client, prefix) == {"host.2.abc": "bbbb2222"}
    await worker.announce()  # also drops the ended ones of others
    assert await client.zcard(writers_key(prefix)) == 1
