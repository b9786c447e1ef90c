"""What a task returns: the HTTP answer it stands for.

Every task of this service returns ``{"status_code": <int>, "body": {...}}``.
``GET /tasks/{id}`` shows ``body`` as ``task_result``; ``Prefer: wait=N`` answers with
``body`` and ``status_code`` themselves (200, or 503 for a bad channel, …). A task that
retries after a FLOOD_WAIT shows ``RETRY``; one that crashed shows ``FAILURE`` with
``{"message": …}``.
"""

from __future__ import annotations

from typing import Any

TaskResult = dict[str, Any]


class RetryLater(Exception):
    """The task should run again after ``seconds`` (FLOOD_WAIT, Telegram unreachable)."""

    def __init__(self, seconds: int, reason: str) -> None:
        super().__init__(reason)
        self.seconds = seconds
        self.reason = reason


def ok(body: dict[str, Any]) -> TaskResult:
    return {"status_code": 200, "body": body}


def fail(status_code: int, message: str, **extra: Any) -> TaskResult:
    return {"status_code": status_code, "body": {"message": message, **extra}}


def split(result: Any) -> tuple[int, Any]:
    """(status code, body) of a stored task result, whatever produced it."""
    if isinstance(result, dict) and isinstance(result.get("status_code"), int):
        return result["status_code"], result.get("body")
    if isinstance(result, BaseException):
        return 500, {"message": f"task failed: {type(result).__name__}: {result}"[:500]}
    return 200, result
