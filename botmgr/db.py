"""Async engine and session factory. Build one per event loop (the API's lifespan, the
worker's loop thread); never share an engine between loops.

How many connections a process needs, and why a checkout should never wait long
(the rule ``worker_pool_size`` computes, and the timeouts that go with it):

- A connection is held by one of four kinds of holders, each bounded on its own:
  a unit of work (one per worker thread or API request; it may hold its connection
  across a Telegram call, e.g. a post's row lock during the send), a fleet job's
  session (sweeps and stats collections: at most ``BOTMGR_SWEEP_DB_SESSIONS`` per
  process, queued in a ``SessionGate``), and the gateway's own short writes (sessions,
  channel hashes, login floods: at most ``MEMORY_SESSIONS``, bots/sessions.py), and
  webhook attempts, which run on the loop beside the tasks (at most
  ``WEBHOOK_SESSIONS``, webhooks/delivery.py).
- The worker's pool is exactly their sum, so every kind always finds its room: a
  fleet job with thousands of bots queues in its gate (no timeout there), never in the
  pool, and a Telegram call that needs a memory write never waits for the sessions
  that wait for Telegram (no cycle between the client pool and this one).
- ``BOTMGR_DB_POOL_TIMEOUT_SECONDS`` is then only a guard: a checkout that waits that
  long means PostgreSQL is stuck, not that the service is busy. A fleet job postpones
  the bot's share that met it (like a FLOOD_WAIT, ``shares.BotShare``) instead of
  failing; a task is retried (worker/tasks.py); the API answers 503.
- ``statement_timeout`` bounds one statement, ``lock_timeout`` (shorter) a wait for a
  row lock, whose holder may be stuck on Telegram (bounded by the gateway's call
  timeout); both surface like the pool timeout (``is_busy``).
- The API's processes share ``API_CONNECTIONS`` (``api_pool``): each keeps its part
  open, at least ``API_MIN_PER_PROCESS``, so ``botmgr api --workers N`` does not
  multiply what PostgreSQL must accept by N. No overflow: SQLAlchemy closes an overflow
  connection when it is returned, so a burst above the pool size connected anew per
  request (asyncpg's connect, TLS probe included, in py-spy under bench/api.py).
PostgreSQL's ``max_connections`` must exceed the sum over all processes: the API's
(⌈30 / N⌉ per process, at least 6: 30 for 1–3 or 5 processes, 32 for 4, 6 N beyond)
and ``worker_pool_size`` per worker process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from botmgr.settings import share

SessionMaker = async_sessionmaker[AsyncSession]

API_POOL, API_OVERFLOW = 10, 20  # the API: one unit of work per request in flight
API_CONNECTIONS = API_POOL + API_OVERFLOW  # the API's, over all its processes
API_MIN_PER_PROCESS = 6  # a process of many still serves a few requests at once
MEMORY_SESSIONS = 4  # the gateway's short writes at once (bots/sessions.DbSessionStore)
WEBHOOK_SESSIONS = 2  # webhook attempts' claims and records at once (webhooks/delivery.py)
# SQLSTATEs of a statement PostgreSQL gave up on: lock_timeout, statement_timeout.
_BUSY_STATES = frozenset({"55P03", "57014"})


def worker_pool_size(worker_concurrency: int, sweep_db_sessions: int) -> int:
    """Connections one worker process holds at most (see the module's rule)."""
    return worker_concurrency + sweep_db_sessions + MEMORY_SESSIONS + WEBHOOK_SESSIONS


def api_pool(processes: int) -> int:
    """The pool size (no overflow) of one of the API's ``processes``: its part of
    API_CONNECTIONS, rounded up, at least API_MIN_PER_PROCESS."""
    return share(API_CONNECTIONS, processes, API_MIN_PER_PROCESS)


def make_engine(
    url: str,
    *,
    pool_size: int = API_POOL,
    max_overflow: int = API_OVERFLOW,
    pool_timeout: float = 30.0,
    statement_timeout: float = 0.0,
    lock_timeout: float = 0.0,
    pre_ping: bool = True,
) -> AsyncEngine:
    """The engine; timeouts in seconds, 0 = PostgreSQL's default (none).

    ``pre_ping`` False: no ``SELECT 1`` round trip per checkout. A connection PostgreSQL
    dropped then fails its first statement; SQLAlchemy takes that error for a disconnect
    and invalidates the whole pool (every connection older than the error is replaced
    at its next checkout), so one statement per outage fails, not one per connection —
    the worker retries that task like any database outage (worker/tasks.py)."""
    server_settings = {
        # Sent in the startup packet: every connection has them, also one that
        # reconnects after PostgreSQL restarted.
        "statement_timeout": str(round(statement_timeout * 1000)),
        "lock_timeout": str(round(lock_timeout * 1000)),
    }
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_pre_ping=pre_ping,
        connect_args={"server_settings": server_settings},
    )


def make_sessionmaker(engine: AsyncEngine) -> SessionMaker:
    return async_sessionmaker(engine, expire_on_commit=False)


# SQLSTATEs of a transaction PostgreSQL aborted to let another go on: deadlock_detected,
# serialization_failure. Nothing of it was written; PostgreSQL's advice is to run it again.
_ABORTED_STATES = frozenset({"40P01", "40001"})


def is_aborted(exc: BaseException) -> bool:
    """The transaction was chosen to end a deadlock (or a serialization conflict): safe
    to run again from the start."""
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in _ABORTED_STATES


def is_busy(exc: BaseException) -> bool:
    """PostgreSQL could not answer in time: no pool connection within the pool timeout,
    or a statement cancelled by lock_timeout / statement_timeout. Worth asking again
    later; nothing of the transaction was written."""
    if isinstance(exc, PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in _BUSY_STATES


@asynccontextmanager
async def task_session(sessionmaker: SessionMaker) -> AsyncIterator[AsyncSession]:
    """One unit of work: commits when the block ends normally, rolls back otherwise."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


class SessionGate:
    """At most ``size`` sessions through this gate hold a connection at once; the rest
    queue here, with no timeout, instead of in the engine's pool, with one. A worker
    process has one for all its fleet jobs (``BOTMGR_SWEEP_DB_SESSIONS``)."""

    def __init__(self, sessionmaker: SessionMaker, size: int) -> None:
        self.sessionmaker = sessionmaker
        self.size = size
        self._free = asyncio.Semaphore(size)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """``task_session`` once a place is free: committed at the end of the block."""
        async with self._free, task_session(self.sessionmaker) as session:
            yield session
