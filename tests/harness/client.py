"""The API app in this process behind an httpx client: no server, no port, and the app's
lifespan runs, so tests see exactly what ``botmgr api`` would serve."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from starlette.types import ASGIApp

from botmgr.app import create_app
from botmgr.settings import Settings
from tests.harness.env import USER

BASE_URL = "http://botmgr.test"


@asynccontextmanager
async def api_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``create_app(settings)``, authenticated as the operator."""
    app = create_app(settings)
    async with app.router.lifespan_context(app), operator_client(app, settings) as client:
        yield client


def operator_client(app: ASGIApp, settings: Settings) -> httpx.AsyncClient:
    """A client of ``app`` (already running), authenticated as the operator."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=BASE_URL,
        auth=(USER, settings.auth_password.get_secret_value()),
        timeout=60,
    )
