from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class TaskAccepted(BaseModel):
    """202: the work runs as a task; follow ``Location`` (``/tasks/{task_id}``)."""

    task_id: str


class TaskOut(BaseModel):
    task_id: str
    task_status: str  # Celery's state: PENDING, STARTED, RETRY, SUCCESS, FAILURE
    task_result: Any  # the task's answer body (tasks/results.py); null while running
