"""The API app in this process behind an httpx client: no server, no port, and the app's
lifespan runs, so tests see exactly what ``botmgr api`` would serve."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from botmgr.app import create_app
from botmgr.settings import Settings
from tests.harness.env import USER

BASE_URL = "http://botmgr.test"


@asynccontextmanager
async def api_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``create_app(settings)``, authenticated as the operator."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url=BASE_URL,
            auth=(USER, settings.auth_password.get_secret_value()),
            timeout=60,
        ) as client:
            yield client
