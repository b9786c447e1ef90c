"""Where a publisher sends a bot's task: straight to the queue of the worker that holds
the bot's lease, so the common case costs one Redis GET and no forwarding. A bot nobody
holds (or a lookup that fails) goes to the shared queue; the worker that takes it
there either takes the bot or forwards the task (worker/tasks.py), so a stale answer
costs one hop, never a wrong owner: ownership is checked where Telegram is called."""

from __future__ import annotations

import logging
from typing import cast

from redis import Redis
from redis.exceptions import RedisError

from botmgr.fleet.keys import FleetKeys, owner_of, worker_queue

log = logging.getLogger(__name__)


class Router:
    def __init__(self, redis_url: str, keys: FleetKeys, *, timeout: float) -> None:
        self._redis = Redis.from_url(
            redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._keys = keys

    def queue_for(self, bot_id: int) -> str | None:
        """The bot's owner's queue, None for the shared queue. Called from the
        publisher's thread (redis-py's pool is thread-safe)."""
        try:
            value = cast("bytes | None", self._redis.get(self._keys.lease(bot_id)))
        except RedisError as exc:
            log.debug("fleet route lookup failed: %s", type(exc).__name__)
            return None
        if not value:
            return None
        return worker_queue(owner_of(value.decode()))

    def close(self) -> None:
        self._redis.close()
