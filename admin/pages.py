"""Pages that are not a table: the operator's recent task outcomes, and the schedules of
the periodic jobs (redbeat entries, through botmgr.worker.schedules)."""

from __future__ import annotations

import asyncio
from typing import Any

from celery import Celery
from sqladmin import BaseView, expose
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from admin import core
from botmgr.audit.service import record
from botmgr.tasks import answers
from botmgr.tasks.results import split
from botmgr.worker import schedules


async def _state(request: Request, task_id: str) -> dict[str, Any]:
    try:
        state, result = await answers.read(core.celery_of(request), task_id)
    except Exception as exc:  # Redis down: the page still lists what was sent
        return {"state": f"unknown ({type(exc).__name__})", "code": None, "body": None}
    if state in ("PENDING", "STARTED"):
        return {"state": state, "code": None, "body": None}
    if state == "RETRY":
        return {"state": state, "code": None, "body": {"message": str(result)[:500]}}
    code, body = split(result)
    return {"state": state, "code": code, "body": body}


class TasksView(BaseView):
    name, icon = "Task results", "fa-solid fa-list-check"

    @expose("/tasks", methods=["GET"], identity="tasks")
    async def tasks(self, request: Request) -> Response:
        outcomes = [dict(e) for e in request.session.get("outcomes", []) if isinstance(e, dict)]
        states = await asyncio.gather(
            *(_state(request, e["task_id"]) for e in outcomes if e.get("task_id"))
        )
        it = iter(states)
        for entry in outcomes:
            entry["result"] = next(it) if entry.get("task_id") else None
        try:
            fresh = max(0, int(request.query_params.get("fresh", "0")))
        except ValueError:
            fresh = 0
        waiting_fresh = any(
            e["result"] and e["result"]["state"] not in answers.READY for e in outcomes[:fresh]
        )
        context = {
            "outcomes": outcomes,
            "fresh": fresh,
            "refresh": waiting_fresh,
            "title": "Task results",
            "subtitle": "What this console session asked for, newest first",
        }
        return await self.templates.TemplateResponse(request, "tasks.html", context)


class SchedulesView(BaseView):
    name, icon = "Schedules", "fa-solid fa-clock"

    @expose("/schedules", methods=["GET"], identity="schedules")
    async def schedules(self, request: Request) -> Response:
        error = None
        try:
            entries = await run_in_threadpool(schedules.list_schedules, core.celery_of(request))
        except Exception as exc:  # Redis down: say so on the page
            entries, error = [], f"cannot read the schedules: {type(exc).__name__}"
        context = {
            "entries": entries,
            "error": error,
            "title": "Schedules",
            "subtitle": "Periodic jobs run by beat (redbeat); edits apply without a restart",
            "timezone": core.core(request).settings.timezone,
        }
        return await self.templates.TemplateResponse(request, "schedules.html", context)

    @expose("/schedules/change", methods=["POST"], identity="schedules-change")
    async def change(self, request: Request) -> Response:
        form = await request.form()
        name, op = str(form.get("name", "")), str(form.get("op", ""))
        label = f"schedule {name}: {op}"
        if op not in OPERATIONS:
            core.remember(request, label, error="unknown operation")
            return RedirectResponse(request.url_for("admin:view-schedules"), status_code=303)
        try:
            # The schedules live in Redis, not in the database: the change is made inside
            # the unit whose commit keeps its audit event, so a change that fails leaves
            # no event (one whose event cannot be committed is reported as failed).
            async with core.unit(request) as unit:
                note, task_id = await _apply(core.celery_of(request), name, op, form.get("spec"))
                action = "schedule.run" if op == "run" else "schedule.change"
                details = {"op": op, "now": note, "task_id": task_id}
                record(
                    unit.session, action, object_type="schedule", object_id=name, details=details
                )
        except schedules.ScheduleError as exc:
            core.remember(request, label, error=str(exc))
            return core.to_outcomes(request, 1)
        except Exception as exc:
            core.remember(request, label, error=f"failed: {type(exc).__name__}")
            return core.to_outcomes(request, 1)
        core.remember(request, label, task_id=task_id, note=note)
        if task_id is not None:
            return core.to_outcomes(request, 1)
        return RedirectResponse(request.url_for("admin:view-schedules"), status_code=303)


OPERATIONS = ("spec", "enable", "disable", "run")


async def _apply(celery: Celery, name: str, op: str, spec: object) -> tuple[str | None, str | None]:
    """Change (or run) the schedule ``name`` in Redis: (what it is now, the task run)."""
    if op == "spec":
        entry = await run_in_threadpool(schedules.set_schedule, celery, name, str(spec or ""))
        return f"now {entry.spec}", None
    if op == "run":
        return None, await run_in_threadpool(schedules.run_now, celery, name)
    await run_in_threadpool(schedules.set_enabled, celery, name, op == "enable")
    return f"{op}d", None
