"""Reading task state from Celery's result backend without blocking the event loop, and
the ``Prefer: wait=N`` (RFC 7240) answer for task-backed routes."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from celery import Celery
from celery.result import AsyncResult
from fastapi.responses import JSONResponse

from botmgr.tasks.results import split

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
