"""The console's landing page as a fleet dashboard (botmgr/stats/fleet.py reads it):
bots by status, bindings needing action (linked to their channel), posts failed in the
last 24 h with reasons, flood and pacing waits now, the next scheduled jobs and posts,
webhook failures. SQLAdmin's ``index`` is the documented place for a dashboard."""

from __future__ import annotations

from typing import Any

from sqladmin import Admin
from sqladmin.authentication import login_required
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from admin import core
from botmgr.channels.schemas import deep_link
from botmgr.stats import fleet
from botmgr.worker import schedules


async def _next_jobs(request: Request) -> tuple[list[schedules.Schedule], str | None]:
    """The periodic jobs by their next run (redbeat, in Redis); Redis down: said so."""
    try:
        entries = await run_in_threadpool(schedules.list_schedules, core.celery_of(request))
    except Exception as exc:
        return [], f"cannot read the schedules: {type(exc).__name__}"
    enabled = [e for e in entries if e.enabled and e.next_run is not None]
    return sorted(enabled, key=lambda e: e.next_run or 0), None


async def _pacing(request: Request) -> tuple[list[dict[str, Any]], str | None]:
    state = core.core(request)
    try:
        return await fleet.pacing_waits(state.redis, state.settings.redis_prefix), None
    except Exception as exc:
        return [], f"cannot read the pacing state: {type(exc).__name__}"


async def webhook_panel(request: Request) -> list[dict[str, Any]]:
    """The webhook failures panel's rows (replay them from the Webhooks page)."""
    async with core.session_for(request) as session:
        return await fleet.webhook_failures(session)


class Console(Admin):
    @login_required
    async def index(self, request: Request) -> Response:
        async with core.session_for(request) as session:
            overview = await fleet.overview(session)
        jobs, jobs_error = await _next_jobs(request)
        pacing, pacing_error = await _pacing(request)
        context = {
            "fleet": overview,
            "deep_link": deep_link,
            "jobs": jobs,
            "jobs_error": jobs_error,
            "pacing": pacing,
            "pacing_error": pacing_error,
            "webhooks": await webhook_panel(request),
            "timezone": core.core(request).settings.timezone,
        }
        return await self.templates.TemplateResponse(request, "sqladmin/index.html", context)
