"""The worker process's single asyncio event loop, in a dedicated thread.

Celery runs tasks in its ``threads`` pool; each task hands its coroutine to this loop
with ``run_coroutine_threadsafe`` and blocks its own thread on the result. The async
engine and the Telethon gateway (its pool of connected clients, one per bot in use) are
created on this loop and live as long as the process: no login per task, no engine
bound to a dead loop. The engine's pool is sized by db.worker_pool_size: the task
threads, the fleet jobs' gate (``fleet``) and the gateway's own writes.
The loop is uvloop's when ``worker_uvloop`` is on and uvloop is importable (bench/sweep.py:
faster for Telethon's CPU-bound work), asyncio's otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from celery import Celery
from sqlalchemy.ext.asyncio import AsyncEngine

from botmgr.db import SessionGate, SessionMaker, make_engine, make_sessionmaker, worker_pool_size
from botmgr.fleet.keys import new_worker_id
from botmgr.fleet.leases import HOPS, Fleet
from botmgr.fleet.setup import make_fleet, make_router
from botmgr.key_writers import KeyAnnouncer
from botmgr.posts import renderer
from botmgr.security import Cipher
from botmgr.settings import Settings
from botmgr.telegram.gateway import Gateway
from botmgr.uow import Publisher, UnitOfWork, unit_of_work
from botmgr.webhooks.delivery import Deliverer

log = logging.getLogger(__name__)
T = TypeVar("T")


def new_event_loop(use_uvloop: bool = True) -> asyncio.AbstractEventLoop:
    """The worker's kind of event loop: uvloop's if asked for and importable."""
    if use_uvloop:
        try:
            import uvloop
        except ImportError:
            log.warning("uvloop is not importable: the worker runs asyncio's event loop")
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def worker_engine(settings: Settings) -> AsyncEngine:
    """The worker's engine: exactly the connections its holders can take (db.py), so a
    checkout that times out means PostgreSQL is stuck, not that the worker is busy."""
    return make_engine(
        settings.database_url,
        pool_size=worker_pool_size(settings.worker_concurrency, settings.sweep_db_sessions),
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout_seconds,
        statement_timeout=settings.db_statement_timeout_seconds,
        lock_timeout=settings.db_lock_timeout_seconds,
        # A task that meets a dropped connection is retried; a ping per checkout cost
        # a third of the worker's database round trips (docs/PERFORMANCE.md).
        pre_ping=False,
    )


class WorkerRuntime:
    def __init__(self, settings: Settings, celery: Celery, worker_id: str | None = None) -> None:
        self.settings = settings
        self.cipher = Cipher.from_settings(settings)
        self.worker_id = worker_id or new_worker_id()
        self.publisher = Publisher(
            celery,
            timeout=settings.redis_timeout_seconds,
            max_countdown=settings.max_countdown_seconds,
            router=make_router(settings),
        )
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.sessionmaker: SessionMaker
        self.fleet: SessionGate  # every session of the sweeps and stats collections
        self.owner: Fleet  # the bots this process owns (botmgr/fleet/leases.py)
        self.gateway: Gateway
        self.announcer: KeyAnnouncer
        self.deliverer: Deliverer  # webhook attempts, on the loop (webhooks/delivery.py)

    def start(self) -> None:
        with self._lock:
            if self._loop is not None:
                return
            loop = new_event_loop(self.settings.worker_uvloop)
            thread = threading.Thread(target=loop.run_forever, name="botmgr-loop", daemon=True)
            thread.start()
            try:
                asyncio.run_coroutine_threadsafe(self._setup(), loop).result()
            except BaseException:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(timeout=10)
                raise
            self._loop, self._thread = loop, thread
            log.info("worker event loop started (%s)", type(loop).__module__.split(".")[0])

    async def _setup(self) -> None:
        from botmgr.bots.sessions import make_gateway

        # Sends render stored posts again: the same limits and budget as the API's.
        renderer.configure(renderer.RendererConfig.from_settings(self.settings))

        self._engine = worker_engine(self.settings)
        self.sessionmaker = make_sessionmaker(self._engine)
        self.fleet = SessionGate(self.sessionmaker, self.settings.sweep_db_sessions)
        self.owner = make_fleet(self.settings, self.worker_id)
        gateway = make_gateway(self.settings, self.sessionmaker, self.cipher, self.owner)
        self.owner.on_lost = gateway.forget_bot
        self.owner.pace_of = gateway.pace_of
        self.gateway = gateway
        await self.owner.start()  # registered before the first task is taken
        # Which key this process encrypts with, for `botmgr rotate-key` (key_writers.py).
        self.announcer = KeyAnnouncer(
            self.owner.redis, self.settings.redis_prefix, self.cipher.key_id, self.worker_id
        )
        self.announcer.start()
        self.deliverer = Deliverer(self.settings, self.sessionmaker, self.publisher, self.cipher)

    async def _teardown(self) -> None:
        try:
            await self.deliverer.close()  # an attempt cut short is published again
            await self.announcer.stop()
            await self.owner.stop()  # clients first, then the leases and the queue
            await self.gateway.close()
        finally:
            await self.owner.redis.aclose()
            await self._engine.dispose()

    def run(self, work: Callable[[WorkerRuntime], Coroutine[Any, Any, T]]) -> T:
        """Run ``work(runtime)`` on the loop and wait for it (from a pool thread)."""
        self.start()
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(work(self), self._loop).result()

    def run_unit(
        self,
        work: Callable[[UnitOfWork, WorkerRuntime], Awaitable[T]],
        *,
        hops: int = 0,
        bot: int | None = None,
    ) -> T:
        """Run ``work`` in one unit of work: committed when it returns (then the jobs it
        collected are published), rolled back when it raises. ``hops``: how often the
        task was forwarded (fleet.leases.HOPS: past a few, a free bot is taken here).
        ``bot``: the bot the task is for; another worker's bot raises NotOwner before
        the unit opens (a forward then costs no transaction)."""

        async def unit(rt: WorkerRuntime) -> T:
            HOPS.set(hops)  # this coroutine's own context (its asyncio task's copy)
            if bot is not None:
                await rt.owner.claim(bot)
            async with unit_of_work(rt.sessionmaker, rt.publisher) as u:
                return await work(u, rt)

        return self.run(unit)

    def stop(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            if loop is None or thread is None:
                return
            try:
                asyncio.run_coroutine_threadsafe(self._teardown(), loop).result(timeout=30)
            except Exception:
                log.exception("worker teardown failed")
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            self._loop = self._thread = None
