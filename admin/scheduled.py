"""Scheduled posts as an agenda: the posts waiting for their time, by day (in the
console's time zone) and by time; the posts of one fan-out at one time are one entry
listing their channels. Read with ``queries.table`` (GET /messages?status=queued&order=due);
cancelling is the lifecycle's ``remove`` (DELETE /messages/{id}) on each post of an entry."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import groupby
from zoneinfo import ZoneInfo

from sqladmin import BaseView, expose
from starlette.requests import Request
from starlette.responses import Response

from admin import core
from admin.composer import zone_of
from admin.posts import apply, cancel_queued, channel_titles
from botmgr.models import PostStatus
from botmgr.posts import queries
from botmgr.posts.schemas import PostOut

LIMIT = 500  # posts shown; the API's list pages through more


@dataclass(slots=True)
class Entry:
    """One post, or the posts of one group due at the same time."""

    at: datetime  # local
    posts: list[PostOut]
    channels: list[str] = field(default_factory=list)

    @property
    def first(self) -> PostOut:
        return self.posts[0]

    @property
    def group_id(self) -> str | None:
        return self.first.group_id if len(self.posts) > 1 else None


@dataclass(slots=True)
class Day:
    day: date
    label: str
    entries: list[Entry]


def day_label(day: date, today: date) -> str:
    if day == today:
        return "Today"
    if day == today + timedelta(days=1):
        return "Tomorrow"
    return day.strftime("%A")


def agenda(posts: Iterable[PostOut], titles: dict[int | None, str], zone: ZoneInfo) -> list[Day]:
    """The posts (in due order) as days of entries."""
    entries: list[Entry] = []
    for post in posts:
        due = post.send_at
        if due is None:
            continue
        at = due.astimezone(zone)
        last = entries[-1] if entries else None
        title = titles.get(post.channel_id, "—")
        if last and post.group_id and last.first.group_id == post.group_id and last.at == at:
            last.posts.append(post)
            last.channels.append(title)
        else:
            entries.append(Entry(at, [post], [title]))
    today = datetime.now(zone).date()
    return [
        Day(day, day_label(day, today), list(items))
        for day, items in groupby(entries, key=lambda e: e.at.date())
    ]


class ScheduledView(BaseView):
    name, icon = "Scheduled", "fa-solid fa-calendar-days"

    @expose("/scheduled", methods=["GET"], identity="scheduled")
    async def scheduled(self, request: Request) -> Response:
        zone = zone_of(request)
        filters = queries.PostFilter(status=(PostStatus.queued,), order="due")
        async with core.session_for(request) as session:
            page = await queries.table(session, filters, limit=LIMIT, offset=0)
            waiting = [p for p in page.messages if p.scheduled]
            titles = await channel_titles(session, [p.channel_id for p in waiting])
        added = {int(i) for i in request.query_params.get("added", "").split(",") if i.isdigit()}
        context = {
            "title": "Scheduled posts",
            "subtitle": f"Waiting for their time, by day (time zone {zone.key})",
            "days": agenda(waiting, titles, zone),
            "added": added,
            "more": page.total > LIMIT,
        }
        return await self.templates.TemplateResponse(request, "scheduled.html", context)

    @expose("/scheduled/cancel", methods=["POST"], identity="scheduled-cancel")
    async def cancel(self, request: Request) -> Response:
        """Cancel the posts of an entry (each in its own unit: one that went out in the
        meantime is refused, the others are cancelled)."""
        form = await request.form()
        ids = [int(v) for v in form.getlist("post_id") if isinstance(v, str) and v.isdigit()]
        for pk in ids:
            # mypy cannot infer a lambda whose default argument binds the loop variable.
            await apply(request, f"cancel post {pk}", lambda u, pk=pk: cancel_queued(u, pk))  # type: ignore[misc]
        return core.to_outcomes(request, len(ids))
