"""Which key each running process encrypts with, kept in Redis so that ``botmgr
rotate-key`` can refuse to start while any process would still write (or could not
read) under another key: rotating then would leave rows that the new key cannot open
once ``BOTMGR_SECRET_KEYS_OLD`` is removed.

Every API and worker process announces ``secret_keys.key_id`` of its current key in the
sorted set ``<prefix>keys:writers`` (member ``"<key id>|<process>"``, score: when the
announcement ends, Redis time in ms), renews it every ``RENEW_SECONDS`` and withdraws it
when it stops. A process killed without stopping drops out after ``TTL_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

TTL_SECONDS = 60.0
RENEW_SECONDS = 15.0


def writers_key(prefix: str) -> str:
    return f"{prefix}keys:writers"


async def _redis_ms(redis: Redis) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def live_writers(redis: Redis, prefix: str) -> dict[str, str]:
    """Process → key id of every process whose announcement has not ended."""
    now = await _redis_ms(redis)
    members = await redis.zrangebyscore(writers_key(prefix), now, "+inf")
    found: dict[str, str] = {}
    for member in members:
        text = member.decode() if isinstance(member, bytes) else str(member)
        key, _, process = text.partition("|")
        found[process] = key
    return found


class KeyAnnouncer:
    """Runs on the event loop of its process (the Redis client belongs to it)."""

    def __init__(self, redis: Redis, prefix: str, key_id: str, process: str) -> None:
        self._redis = redis
        self._key = writers_key(prefix)
        self._member = f"{key_id}|{process}"
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def announce(self) -> None:
        now = await _redis_ms(self._redis)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self._key, {self._member: now + int(TTL_SECONDS * 1000)})
            pipe.zremrangebyscore(self._key, "-inf", now)  # the ended ones of others
            await pipe.execute()

    async def _renew(self) -> None:
        # Ends when ``stop`` sets the event, not only by cancellation: a cancel that lands
        # while a Redis call is finishing was seen lost (under pytest-asyncio), and the
        # loop then ran on, so the app's shutdown waited for ever.
        while not self._stopping.is_set():
            try:
                await self.announce()
            except (RedisError, OSError) as exc:
                # Redis down: the announcement lapses, so rotate-key cannot vouch for this
                # process and refuses (it needs Redis too); the service goes on.
                log.warning("could not announce the secret key id: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), RENEW_SECONDS)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._renew())

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(RedisError, OSError):
            await self._redis.zrem(self._key, self._member)
