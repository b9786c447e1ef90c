"""What console views share: the API's state, enqueueing tasks exactly as the API does, and
the operator's recent outcomes (task ids or refusals) kept in the session for the Tasks
page."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from celery import Celery
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import RedirectResponse

from botmgr.errors import AppError
from botmgr.security import Cipher
from botmgr.tasks import waiting
from botmgr.worker import app as worker_app

# The tasks the API and the periodic jobs use (names fixed by the periodic-jobs issue).
CHECK_BINDING: str = worker_app.CHECK_BINDING
CHECK_BOT: str = getattr(worker_app, "CHECK_BOT", "botmgr.bots.check")
COLLECT_CHANNEL_STATS: str = getattr(
    worker_app, "COLLECT_CHANNEL_STATS", "botmgr.stats.collect_channel"
)
SEND_POST: str = worker_app.SEND_POST

RECENT = 20  # outcomes remembered per console session (the cookie stays small)


def core(request: Request) -> State:
    return request.app.state.core


def celery_of(request: Request) -> Celery:
    return core(request).celery


def cipher_of(request: Request) -> Cipher:
    return core(request).cipher


@asynccontextmanager
async def session_for(request: Request) -> AsyncIterator[AsyncSession]:
    """A session of the API's sessionmaker; the caller commits."""
    async with core(request).sessionmaker() as session:
        yield session


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


def new_task_id() -> str:
    return str(uuid.uuid4())


async def enqueue(
    request: Request, label: str, name: str, args: list[Any], *, task_id: str | None = None
) -> str | None:
    """Send ``name`` like the API does (fresh task id, retried publish) and remember it.
    Returns the task id, or None when the queue refused (remembered as an error)."""
    task_id = task_id or new_task_id()
    try:
        await waiting.enqueue(celery_of(request), name, args, task_id)
    except AppError as exc:
        remember(request, label, task=name, error=exc.message)
        return None
    remember(request, label, task_id=task_id, task=name)
    return task_id


async def enqueue_each(request: Request, label: str, name: str) -> RedirectResponse:
    """An action over the selected rows: one ``name`` task per id (``label`` names the id
    with ``{}``), then the outcomes page."""
    ids = pks(request)
    for pk in ids:
        await enqueue(request, label.format(pk), name, [pk])
    return to_outcomes(request, len(ids))


def to_outcomes(request: Request, fresh: int) -> RedirectResponse:
    url = request.url_for("admin:view-tasks").include_query_params(fresh=fresh)
    return RedirectResponse(url, status_code=302)
