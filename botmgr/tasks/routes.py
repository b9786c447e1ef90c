"""GET /tasks/{id}: ``{"task_id", "task_status", "task_result"}`` for any task above.

``task_status`` is Celery's state; ``task_result`` the task's answer body (see
tasks/results.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from botmgr.deps import CeleryDep, UnitDep
from botmgr.errors import RESPONSES
from botmgr.security import require_operator
from botmgr.tasks import service
from botmgr.tasks.schemas import TaskOut

router = APIRouter(tags=["tasks"], dependencies=[Depends(require_operator)], responses=RESPONSES)


@router.get("/tasks/{task_id}")
async def get_task(
    task_id: Annotated[str, Path(max_length=64)], unit: UnitDep, celery: CeleryDep
) -> TaskOut:
    return await service.describe(unit.session, celery, task_id)
