"""Audit tests: the API app (with the console) in this process on the session's database,
truncated per test; Telegram is the in-memory FakeGateway (registering a bot checks its
token inline) and the queue a publisher that keeps the jobs — no worker, no tgemu.

``rest`` is an API client of the operator's credentials, ``console`` a console session
logged in through its form; ``events()`` reads the audit log as committed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from botmgr.app import create_app
from botmgr.models import AuditEvent
from botmgr.settings import Settings
from botmgr.telegram.fake import FakeGateway
from tests.admin.conftest import client_for, login
from tests.harness.client import operator_client
from tests.harness.env import settings_from
from tests.rules.conftest import RecordingPublisher

ADDRESS = "127.0.0.1"  # the client httpx's ASGITransport presents


@dataclass
class Audited:
    app: FastAPI
    settings: Settings
    fake: FakeGateway
    publisher: RecordingPublisher
    engine: AsyncEngine

    async def events(self) -> list[AuditEvent]:
        """The audit log as committed, oldest first."""
        async with AsyncSession(self.engine) as session:
            rows = await session.execute(select(AuditEvent).order_by(AuditEvent.id))
            return list(rows.scalars())


@pytest.fixture
async def audited(
    service_env: dict[str, str], db_engine: AsyncEngine, clean_db: None
) -> AsyncIterator[Audited]:
    settings = settings_from(service_env)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        real = app.state.gateway
        app.state.gateway = fake = FakeGateway()
        app.state.publisher = publisher = RecordingPublisher()
        try:
            yield Audited(app, settings, fake, publisher, db_engine)
        finally:
            app.state.gateway = real  # closed by the lifespan


@pytest.fixture
async def rest(audited: Audited) -> AsyncIterator[httpx.AsyncClient]:
    async with operator_client(audited.app, audited.settings) as client:
        yield client


@pytest.fixture
async def console(audited: Audited) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(audited.app) as client:
        await login(client, audited.settings)
        yield client
