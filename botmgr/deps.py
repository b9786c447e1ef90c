"""FastAPI dependency aliases shared by the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from celery import Celery
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.errors import Unavailable
from botmgr.security import Cipher
from botmgr.settings import Settings
from botmgr.telegram.gateway import Gateway


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    # Routes commit explicitly (before enqueueing tasks); anything uncommitted when the
    # route ends, normally or not, is rolled back here, before the response goes out.
    async with request.app.state.sessionmaker() as session:
        yield session


def _gateway(request: Request) -> Gateway:
    gateway = getattr(request.app.state, "gateway", None)
    if gateway is None:
        raise Unavailable("Bot can't connect to Telegram: the Telegram gateway is not available")
    return gateway


def _cipher(request: Request) -> Cipher:
    return request.app.state.cipher


def _celery(request: Request) -> Celery:
    return request.app.state.celery


def _settings(request: Request) -> Settings:
    return request.app.state.settings


SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]
GatewayDep = Annotated[Gateway, Depends(_gateway)]
CipherDep = Annotated[Cipher, Depends(_cipher)]
CeleryDep = Annotated[Celery, Depends(_celery)]
SettingsDep = Annotated[Settings, Depends(_settings)]
