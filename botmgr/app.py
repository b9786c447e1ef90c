"""FastAPI application factory: routers, error handlers, the lifespan that owns the
engine, Redis client and Telegram gateway of this process."""

from __future__ import annotations

import gc
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from botmgr import apidocs, health
from botmgr.db import api_pool, make_engine, make_sessionmaker
from botmgr.errors import install_handlers
from botmgr.headers import SecurityHeaders
from botmgr.key_writers import KeyAnnouncer
from botmgr.monitoring import logs
from botmgr.monitoring.processes import mark_dead
from botmgr.monitoring.scrape import FleetGauges
from botmgr.posts import renderer
from botmgr.security import Cipher
from botmgr.settings import Settings, get_settings, share
from botmgr.throttle import LoginThrottle
from botmgr.uow import Publisher
from botmgr.worker.app import make_celery

log = logging.getLogger(__name__)


def _gateway_or_none(app: FastAPI) -> Any:
    from botmgr.bots.sessions import make_gateway

    try:
        return make_gateway(app.state.settings, app.state.sessionmaker, app.state.cipher)
    except ImportError:  # the Telethon gateway is not installed: /bots answers 503
        log.warning("Telegram gateway unavailable; bot registration will answer 503")
        return None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    processes = settings.api_processes  # this process is one of them
    engine = make_engine(
        settings.database_url,
        pool_size=api_pool(processes),
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout_seconds,
        statement_timeout=settings.db_statement_timeout_seconds,
        lock_timeout=settings.db_lock_timeout_seconds,
        # The ping was 3 of a list page's 8 round trips (BEGIN; SELECT; ROLLBACK): without
        # it a connection PostgreSQL dropped fails one request per process with 503 (as
        # during the outage itself), and SQLAlchemy renews the whole pool after it.
        pre_ping=False,
    )
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    # The same pool, each connection in autocommit while it serves a list page (deps.py).
    app.state.reader = engine.execution_options(isolation_level="AUTOCOMMIT")
    timeout = settings.redis_timeout_seconds
    app.state.redis = aioredis.from_url(
        settings.redis_url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),  # /healthz says how Redis is now, once
    )
    # Which key this process encrypts with, for `botmgr rotate-key` (key_writers.py).
    announcer = KeyAnnouncer(
        app.state.redis,
        settings.redis_prefix,
        app.state.cipher.key_id,
        f"api.{socket.gethostname()}.{os.getpid()}",
    )
    announcer.start()
    # Posts are rendered in processes of their own (posts/renderer.py), started now so
    # the first post does not wait for them. The API's processes split the configured
    # number (at least one each): N API processes do not start N times the renderers.
    config = renderer.RendererConfig.from_settings(settings)
    renderer.configure(replace(config, processes=share(config.processes, processes)))
    # Created here, on the loop that serves requests: Telethon clients bind to it.
    app.state.gateway = _gateway_or_none(app)
    # What exists now (modules, the app, SQLAlchemy's and pydantic's structures: 170,000+
    # objects) lives as long as the process: kept out of the collector's full passes,
    # which otherwise walked all of it every few seconds under load — 14 % of the API's
    # CPU serving GET /bots/ (gc.callbacks timing, docs/PERFORMANCE.md).
    gc.freeze()
    # A request makes thousands of short-lived objects (rows, dicts, models) that
    # reference counting frees; the default young-generation threshold (700) ran a
    # collection every few requests. Rarer ones: GET /bots/ 0.95 → 1.00 × the anchor,
    # the other routes 5–15 % up (bench.api, docs/PERFORMANCE.md).
    gc.set_threshold(50_000, 50, 100)
    try:
        yield
    finally:
        if app.state.gateway is not None:
            await app.state.gateway.close()
        await announcer.stop()
        await app.state.redis.aclose()
        await app.state.throttle.aclose()
        await engine.dispose()
        mark_dead(os.getpid())


def create_app(settings: Settings | None = None) -> FastAPI:
    from botmgr.audit.routes import router as audit_router
    from botmgr.bots.routes import router as bots_router
    from botmgr.channels.routes import router as channels_router
    from botmgr.fleet.setup import make_router
    from botmgr.monitoring.routes import router as monitoring_router
    from botmgr.posts.media_routes import router as media_router
    from botmgr.posts.routes import router as posts_router
    from botmgr.stats.routes import router as stats_router
    from botmgr.tasks.routes import router as tasks_router
    from botmgr.webhooks.routes import router as webhooks_router

    settings = settings or get_settings()
    # /docs, /redoc and /openapi.json are botmgr.apidocs' routes, behind credentials.
    app = FastAPI(
        title="botmgr",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    logs.hide_settings(settings)  # never in a log line, whoever logs it
    app.state.fleet_gauges = FleetGauges()  # GET /metrics: read at most every few seconds
    app.state.throttle = LoginThrottle(settings)  # failed logins, API and console
    app.state.health = health.HealthCache()
    app.state.cipher = Cipher.from_settings(settings)
    app.state.celery = make_celery(settings, polling=True)
    app.state.publisher = Publisher(
        app.state.celery,
        timeout=settings.redis_timeout_seconds,
        max_countdown=settings.max_countdown_seconds,
        router=make_router(settings),  # a bot's tasks straight to its owner's queue
    )
    install_handlers(app)
    for router in (
        bots_router,
        channels_router,
        posts_router,
        media_router,
        tasks_router,
        webhooks_router,
    ):
        app.include_router(router)
    app.include_router(audit_router)
    app.include_router(stats_router)
    app.include_router(health.router)
    app.include_router(monitoring_router)
    app.include_router(apidocs.router)
    from admin import mount_admin

    mount_admin(app)  # the operator console at /admin (login: the API's credentials)
    app.add_middleware(SecurityHeaders)  # CSP, nosniff, no framing: every answer
    app.add_middleware(logs.RequestId)  # outermost: the id is in every record of a request

    return app
