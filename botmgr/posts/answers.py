"""Answers of the routes that act on several posts at once (a fan-out, a group)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from celery import Celery
from redis.exceptions import RedisError
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from botmgr.posts.lifecycle import Change
from botmgr.tasks.answers import READY, prefer_wait, wait_for
from botmgr.tasks.results import split


def group_body(group_id: str, changes: Sequence[Change]) -> dict[str, Any]:
    return {
        "group_id": group_id,
        "posts": [
            {
                "post_id": c.post.id,
                "channel_id": c.channel_id,
                "task_id": c.task_id,
                "status": c.post.status.value,
            }
            for c in changes
        ],
    }


class GroupAnswer(JSONResponse):
    """202 ``body`` + Location for the send tasks of a fan-out; with ``Prefer: wait=N``,
    200 ``{"group_id", "posts": [<each task's answer, with its status_code>]}`` when all
    of them end within N seconds (else the 202)."""

    def __init__(
        self,
        celery: Celery,
        body: dict[str, Any],
        task_ids: Sequence[str],
        *,
        location: str,
        prefer: str | None,
        cap: float,
    ) -> None:
        self._celery, self._task_ids, self._group = celery, list(task_ids), body["group_id"]
        self._wait = prefer_wait(prefer, cap)
        self._location = location
        super().__init__(body, 202, {"Location": location})

    async def _answers(self) -> list[dict[str, Any]] | None:
        deadline = time.monotonic() + self._wait
        answers: list[dict[str, Any]] = []
        for task_id in self._task_ids:
            try:
                state, result = await wait_for(
                    self._celery, task_id, max(0.0, deadline - time.monotonic())
                )
            except (RedisError, OSError, TimeoutError):
                return None
            if state not in READY:
                return None
            status_code, body = split(result)
            answers.append({"status_code": status_code, **(body if isinstance(body, dict) else {})})
        return answers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._wait > 0 and (answers := await self._answers()) is not None:
            self.status_code = 200
            self.body = self.render({"group_id": self._group, "posts": answers})
            self.init_headers(
                {"Location": self._location, "Preference-Applied": f"wait={self._wait:g}"}
            )
        await super().__call__(scope, receive, send)
