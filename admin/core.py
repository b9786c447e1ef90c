"""What console views share: the API's state, a unit of work per action (the same one the
API's requests use: commit, then publish), and the operator's recent outcomes (task ids
or refusals) kept in the session for the Tasks page."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from celery import Celery
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import RedirectResponse

from botmgr.audit.context import Actor, from_request
from botmgr.db import is_aborted
from botmgr.errors import AppError
from botmgr.models import ActorKind
from botmgr.security import Cipher
from botmgr.uow import UnitOfWork, unit_of_work

RECENT = 20  # outcomes remembered per console session (the cookie stays small)


def core(request: Request) -> State:
    state: State = request.app.state.core
    return state


def celery_of(request: Request) -> Celery:
    celery: Celery = core(request).celery
    return celery


def cipher_of(request: Request) -> Cipher:
    cipher: Cipher = core(request).cipher
    return cipher


@asynccontextmanager
async def session_for(request: Request) -> AsyncIterator[AsyncSession]:
    """A read-only session of the API's sessionmaker (pages; actions use ``unit``)."""
    async with core(request).sessionmaker() as session:
        yield session


def actor(request: Request) -> Actor:
    """The console session's operator, from this request's address: who the audit
    events of the action name (the gate let only a logged-in session get here)."""
    return from_request(request, ActorKind.console, str(request.session.get("user_id", "")))


def unit(request: Request) -> Any:
    """The action's unit of work: ``async with core.unit(request) as u: …``."""
    state = core(request)
    return unit_of_work(state.sessionmaker, state.publisher, actor=actor(request))


T = TypeVar("T")
#: Runs of an action's unit that PostgreSQL aborts to end a deadlock before it gives up.
ABORTED_RUNS = 3


async def in_unit(request: Request, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """``work`` in the action's unit of work, run again when PostgreSQL chose it to end
    a deadlock (workers invalidating a bot lock its bindings in another order than a
    check holding one: both are retried, the console's click too). Nothing of an
    aborted run was committed or published."""
    for run in range(ABORTED_RUNS):
        try:
            async with unit(request) as u:
                return await work(u)
        except DBAPIError as exc:
            if not is_aborted(exc) or run == ABORTED_RUNS - 1:
                raise
    raise AssertionError("unreachable")


def pks(request: Request) -> list[int]:
    """The ids an action was invoked on (SQLAdmin passes ``?pks=1,2``)."""
    raw = request.query_params.get("pks", "")
    return [int(p) for p in raw.split(",") if p.strip().isdigit()]


def remember(
    request: Request,
    label: str,
    *,
    task_id: str | None = None,
    task: str | None = None,
    error: str | None = None,
    note: str | None = None,
) -> None:
    entry = {"label": label, "task_id": task_id, "task": task, "error": error, "note": note}
    recent = [e for e in request.session.get("outcomes", []) if isinstance(e, dict)]
    request.session["outcomes"] = [entry, *recent][:RECENT]


async def request_each(
    request: Request, label: str, ask: Callable[[UnitOfWork, int], str | Awaitable[str]]
) -> RedirectResponse:
    """An action over the selected rows: ``ask(unit, id)`` collects one task per id
    (``label`` names the id with ``{}``), each in its own unit; then the outcomes page."""
    ids = pks(request)
    for pk in ids:
        # mypy cannot infer a lambda whose default argument binds the loop variable.
        await run_action(request, label.format(pk), lambda u, pk=pk: ask(u, pk))  # type: ignore[misc]
    return to_outcomes(request, len(ids))


async def run_action(
    request: Request, label: str, ask: Callable[[UnitOfWork], str | Awaitable[str]]
) -> None:
    """One synchronous service call that collects a task, in a unit of work; the task id
    or the refusal is remembered for the Tasks page."""
    name: str | None = None

    async def work(u: UnitOfWork) -> str:
        nonlocal name
        asked = ask(u)
        task_id = asked if isinstance(asked, str) else await asked
        name = u.jobs[-1].name if u.jobs else None
        return task_id

    try:
        task_id = await in_unit(request, work)
    except AppError as exc:
        remember(request, label, task=name, error=exc.message)
        return
    remember(request, label, task_id=task_id, task=name)


def to_outcomes(request: Request, fresh: int) -> RedirectResponse:
    url = request.url_for("admin:view-tasks").include_query_params(fresh=fresh)
    return RedirectResponse(url, status_code=302)
