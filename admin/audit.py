"""The Audit log page: GET /audit's events, newest first, filtered by actor, action,
object and days (in the console's time zone) — read-only: it only renders a GET form."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqladmin import BaseView, expose
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from admin import core
from admin.composer import zone_of
from botmgr.audit import service
from botmgr.audit.schemas import AuditEventOut
from botmgr.errors import AppError
from botmgr.models import ActorKind

PAGE = 50
FIELDS = ("actor", "actor_kind", "action", "object_type", "object_id", "from", "to")
# Where an object's own console page is (SQLAdmin's identity; a channel: its overview).
DETAILS = {"bot": "bot", "binding": "binding", "post": "post"}


def _day(raw: str, zone: ZoneInfo, *, end: bool = False) -> datetime | None:
    """The start of the day ``raw`` (YYYY-MM-DD) in ``zone``; ``end``: of the next day
    (``to`` is inclusive on the page)."""
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise AppError(f"'{raw[:20]}' is not a day (YYYY-MM-DD)") from None
    return datetime.combine(day + timedelta(days=1 if end else 0), time(), zone)


def given_of(params: QueryParams) -> dict[str, str]:
    """The filters as typed (the form shows them again)."""
    return {k: params.get(k, "").strip()[:255] for k in FIELDS}


def filters_of(given: dict[str, str], zone: ZoneInfo) -> service.AuditFilter:
    kind = given["actor_kind"]
    if kind and kind not in ActorKind.__members__:
        raise AppError(f"actor kind must be one of {', '.join(ActorKind)}")
    return service.AuditFilter(
        actor=given["actor"] or None,
        actor_kind=ActorKind(kind) if kind else None,
        action=given["action"] or None,
        object_type=given["object_type"] or None,
        object_id=given["object_id"] or None,
        since=_day(given["from"], zone),
        until=_day(given["to"], zone, end=True),
    )


def _link(request: Request, event: AuditEventOut) -> str | None:
    if event.object_id is None or not event.object_id.isdigit():
        return None
    if event.object_type == "channel":
        return f"{request.url_for('admin:index')}channel/overview/{event.object_id}"
    identity = DETAILS.get(event.object_type)
    if identity is None:
        return None
    return str(request.url_for("admin:details", identity=identity, pk=event.object_id))


class AuditView(BaseView):
    name, icon = "Audit log", "fa-solid fa-clipboard-list"

    @expose("/audit", methods=["GET"], identity="audit")
    async def audit(self, request: Request) -> Response:
        zone = zone_of(request)
        try:
            page = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            page = 1
        error, events, total = None, [], 0
        given = given_of(request.query_params)
        try:
            filters = filters_of(given, zone)
            async with core.session_for(request) as session:
                found = await service.table(session, filters, limit=PAGE, offset=(page - 1) * PAGE)
            events, total = found.events, found.total
        except AppError as exc:
            error = exc.message
        rows: list[dict[str, Any]] = [
            {"event": e, "at": e.at.astimezone(zone), "link": _link(request, e)} for e in events
        ]
        pages = max(1, -(-total // PAGE))
        kept = {k: v for k, v in given.items() if v}
        context = {
            "title": "Audit log",
            "subtitle": f"Who changed what, newest first (time zone {zone.key})",
            "rows": rows,
            "given": given,
            "kinds": [k.value for k in ActorKind],
            "error": error,
            "total": total,
            "page": page,
            "pages": pages,
            "prev": request.url.replace_query_params(**kept, page=page - 1) if page > 1 else None,
            "next": request.url.replace_query_params(**kept, page=page + 1)
            if page < pages
            else None,
        }
        return await self.templates.TemplateResponse(
            request, "audit.html", context, status_code=422 if error else 200
        )
