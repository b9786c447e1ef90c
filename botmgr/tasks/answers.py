"""Reading task state from Celery's result backend without blocking the event loop, and
the answer of task-backed routes: 202 + ``Location``, or with ``Prefer: wait=N``
(RFC 7240) the task's own answer when it ends in time.

A read gives up after the backend's socket timeout (BOTMGR_REDIS_TIMEOUT_SECONDS), so a
Redis that stops answering makes GET /tasks/{id} a 503 instead of a hang; a wait that
cannot read the result any more ends with the 202 it would have sent anyway (the task
is queued: the wait was only a preference)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from typing import Any

from celery import Celery
from celery.result import AsyncResult
from redis.exceptions import RedisError
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

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
    state = str(result.state)
    return state, (result.result if state != "PENDING" else None)


async def read(celery: Celery, task_id: str) -> tuple[str, Any]:
    """The task's state and result; TimeoutError when the backend does not answer."""
    timeout = celery.conf.get("redis_socket_timeout")
    return await asyncio.wait_for(
        asyncio.to_thread(_read, celery, task_id), float(timeout) if timeout else None
    )


async def wait_for(celery: Celery, task_id: str, seconds: float) -> tuple[str, Any]:
    deadline = time.monotonic() + seconds
    delay = 0.05
    while True:
        state, result = await read(celery, task_id)
        if state in READY or time.monotonic() >= deadline:
            return state, result
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.5)


class TaskAnswer(JSONResponse):
    """202 ``{"task_id", **extra}`` + Location; with a wait asked for, the task's own answer (its
    body and status code) if it ends in time. The wait runs when the response is sent:
    after the request's unit of work has committed and published the task. ``headers``
    go out with either answer (an idempotent replay's mark)."""

    #: Fields of ``extra`` a task's own answer carries too: an idempotent replay of a
    #: waited-for answer finds them there.
    ECHOED = ("post_id",)

    def __init__(
        self,
        celery: Celery,
        task_id: str,
        *,
        prefer: str | None,
        cap: float,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self._celery, self.task_id = celery, task_id
        self._wait = prefer_wait(prefer, cap)
        self._always = {**(headers or {}), "Location": f"/tasks/{task_id}"}
        # ``extra``: what the 202 says besides the task (POST /messages: the post_id).
        super().__init__({"task_id": task_id, **(extra or {})}, 202, self._always)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._wait > 0:
            try:
                state, result = await wait_for(self._celery, self.task_id, self._wait)
            except (RedisError, OSError, TimeoutError):
                state = "PENDING"
            if state in READY:
                status_code, body = split(result)
                self.status_code, self.body = status_code, self.render(body)
                self.init_headers({**self._always, "Preference-Applied": f"wait={self._wait:g}"})
        await super().__call__(scope, receive, send)
