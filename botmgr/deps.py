"""FastAPI dependency aliases shared by the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from celery import Celery
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from botmgr.audit.context import from_request
from botmgr.errors import Unavailable
from botmgr.models import ActorKind
from botmgr.security import Cipher, Operator
from botmgr.settings import Settings
from botmgr.telegram.gateway import Gateway
from botmgr.uow import UnitOfWork, unit_of_work


async def _unit(request: Request, operator: Operator) -> AsyncIterator[UnitOfWork]:
    # scope="function": the unit commits and publishes its jobs when the route returns,
    # before the response is sent — so a 202 names a task that is already queued, and a
    # refused commit or publish still answers with its error.
    # The operator (the router's own credentials check, run once per request) is who the
    # unit's audit events name, with the request's address (botmgr/audit/context.py).
    state = request.app.state
    actor = from_request(request, ActorKind.api, operator)
    async with unit_of_work(state.sessionmaker, state.publisher, actor=actor) as unit:
        yield unit


async def _reader(request: Request) -> AsyncIterator[AsyncConnection]:
    # A list page is one statement (botmgr/pages.py): it needs no transaction, so it runs
    # in autocommit — no BEGIN and COMMIT round trips around the query — and on a bare
    # connection: an ORM session has nothing to add to plain rows.
    # scope="function": the connection is back in the pool before the response is sent.
    async with request.app.state.reader.connect() as connection:
        yield connection


# The accessors are coroutines although they do not wait: FastAPI runs a plain def
# dependency in its thread pool, a thread hop per request (seen in py-spy under
# bench/api.py), for what is one attribute read.


async def _gateway(request: Request) -> Gateway:
    gateway: Gateway | None = getattr(request.app.state, "gateway", None)
    if gateway is None:
        raise Unavailable("Bot can't connect to Telegram: the Telegram gateway is not available")
    return gateway


async def _cipher(request: Request) -> Cipher:
    cipher: Cipher = request.app.state.cipher
    return cipher


async def _celery(request: Request) -> Celery:
    celery: Celery = request.app.state.celery
    return celery


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


UnitDep = Annotated[UnitOfWork, Depends(_unit, scope="function")]
ReaderDep = Annotated[AsyncConnection, Depends(_reader, scope="function")]
GatewayDep = Annotated[Gateway, Depends(_gateway)]
CipherDep = Annotated[Cipher, Depends(_cipher)]
CeleryDep = Annotated[Celery, Depends(_celery)]
SettingsDep = Annotated[Settings, Depends(_settings)]
