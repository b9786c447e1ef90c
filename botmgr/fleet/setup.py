"""The fleet's objects from settings: a worker's ``Fleet``, any publisher's ``Router``."""

from __future__ import annotations

from redis.asyncio import Redis

from botmgr.fleet.keys import FleetKeys
from botmgr.fleet.leases import Fleet
from botmgr.fleet.routing import Router
from botmgr.settings import Settings


def make_fleet(settings: Settings, worker_id: str) -> Fleet:
    """On the worker's event loop (the Redis client belongs to it)."""
    redis = Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
    )
    # A gone worker's queue is watched for as long as kombu may still restore its
    # unacknowledged messages into it (after the visibility timeout, swept every half).
    gone = 2 * settings.celery_visibility_timeout + 60
    return Fleet(
        redis,
        FleetKeys(settings.redis_prefix),
        worker_id,
        ttl=settings.fleet_lease_seconds,
        gone_seconds=gone,
    )


def make_router(settings: Settings) -> Router:
    return Router(
        settings.redis_url,
        FleetKeys(settings.redis_prefix),
        timeout=settings.redis_timeout_seconds,
    )
