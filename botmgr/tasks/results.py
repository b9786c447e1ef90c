"""What a task returns: the HTTP answer it stands for.

Every task of this service returns ``{"status_code": <int>, "body": {...}}``, made by
``to_result`` from the domain's outcome or error. ``GET /tasks/{id}`` shows ``body`` as
``task_result``; ``Prefer: wait=N`` answers with ``body`` and ``status_code`` themselves
(200, or 503 for a bad channel, …). A task that retries after a FLOOD_WAIT shows
``RETRY``; one that crashed shows ``FAILURE`` with ``{"message": …}``.
"""

from __future__ import annotations

from typing import Any

from botmgr.errors import AppError
from botmgr.outcomes import Outcome

TaskResult = dict[str, Any]


class Retrying(Exception):
    """What a task that will run again shows in its RETRY state: one message argument,
    so the result backend can rebuild it on the reading side."""


def to_result(answer: Outcome | AppError) -> TaskResult:
    if isinstance(answer, AppError):
        return {"status_code": answer.status_code, "body": {"message": answer.message}}
    return {"status_code": int(answer.status), "body": answer.body()}


def split(result: Any) -> tuple[int, Any]:
    """(status code, body) of a stored task result, whatever produced it."""
    if isinstance(result, dict) and isinstance(result.get("status_code"), int):
        return result["status_code"], result.get("body")
    if isinstance(result, BaseException):
        return 500, {"message": f"task failed: {type(result).__name__}: {result}"[:500]}
    return 200, result
