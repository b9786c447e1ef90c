"""Reading task state from Celery's result backend without blocking the event loop, and
the ``Prefer: wait=N`` (RFC 7240) answer for task-backed routes."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from celery import Celery
from celery.result import AsyncResult
from fastapi.responses import JSONResponse

from botmgr.errors import Unavailable
from botmgr.tasks.results import split

log = logging.getLogger(__name__)

_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
READY = {"SUCCESS", "FAILURE", "REVOKED"}


def prefer_wait(header: str | None, cap: float) -> float:
    """Seconds asked for by ``Prefer: wait=N`` (0 when absent or malformed), capped."""
    if not header:
        return 0.0
    match = _WAIT.search(header)
    return min(float(match.group(1)), cap) if match else 0.0


def _read(celery: Celery, task_id: str) -> tuple[str, Any]:
    result = AsyncResult(task_id, app=celery)
    state = result.state
    return state, (result.result if state != "PENDING" else None)


async def read(celery: Celery, task_id: str) -> tuple[str, Any]:
    return await asyncio.to_thread(_read, celery, task_id)


async def wait_for(celery: Celery, task_id: str, seconds: float) -> tuple[str, Any]:
    deadline = time.monotonic() + seconds
    delay = 0.05
    while True:
        state, result = await read(celery, task_id)
        if state in READY or time.monotonic() >= deadline:
            return state, result
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.5)


async def enqueue(celery: Celery, name: str, args: list[Any], task_id: str) -> None:
    """Publish a task (after the caller's commit) without blocking the event loop. If the
    broker is down the row stays recorded with its task id and the caller gets a 503."""

    def send() -> None:
        celery.send_task(
            name,
            args=args,
            task_id=task_id,
            retry=True,
            retry_policy={
                "max_retries": 2,
                "interval_start": 0.2,
                "interval_step": 0.5,
                "interval_max": 1,
            },
        )

    try:
        await asyncio.to_thread(send)
    except Exception as exc:
        log.error("could not enqueue %s %s: %s", name, task_id, type(exc).__name__)
        raise Unavailable(
            "task queue unavailable: the request is recorded but not scheduled; try again later"
        ) from exc


def accepted(task_id: str) -> JSONResponse:
    return JSONResponse(
        {"task_id": task_id}, status_code=202, headers={"Location": f"/tasks/{task_id}"}
    )


async def answer(celery: Celery, task_id: str, prefer: str | None, cap: float) -> JSONResponse:
    """202 + Location, or — if the caller asked to wait and the task finished in time —
    the task's own answer with its status code."""
    seconds = prefer_wait(prefer, cap)
    if seconds <= 0:
        return accepted(task_id)
    state, result = await wait_for(celery, task_id, seconds)
    if state not in READY:
        return accepted(task_id)
    status_code, body = split(result)
    headers = {"Preference-Applied": f"wait={seconds:g}", "Location": f"/tasks/{task_id}"}
    return JSONResponse(body, status_code=status_code, headers=headers)
