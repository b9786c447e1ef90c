"""Channels: list, the overview page (binding, charts of posts/day, views/day, views by
age, subscribers and ERR, latest figures, the "post message" form) and the channel
actions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

from markupsafe import Markup
from sqladmin import ModelView, action, expose
from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from admin import core
from admin.charts import daily_chart, series_chart
from botmgr.channels import failover
from botmgr.channels import service as channels
from botmgr.channels.links import to_bot_api_id
from botmgr.channels.schemas import DailyStatsOut, UnboundOut
from botmgr.errors import AppError
from botmgr.models import LIVE, Binding, Bot, Channel
from botmgr.posts import service as posts
from botmgr.stats import analytics
from botmgr.stats import service as stats
from botmgr.tasks.names import SEND_POST
from botmgr.uow import UnitOfWork

CHART_DAYS = 60


def analytics_charts(days: list[date], rows: list[DailyStatsOut]) -> dict[str, Markup]:
    """Views by age (the day's posts' views summed at each age), subscribers and ERR."""
    hours = [a.hours for a in rows[0].by_age] if rows else []
    by_age = [
        (
            f"{h} h",
            [next((a.views for a in r.by_age if a.hours == h and a.posts), None) for r in rows],
        )
        for h in hours
    ]
    return {
        "age_chart": series_chart("Views by age", days, by_age),
        "subscribers_chart": series_chart(
            "Subscribers", days, [("subscribers", [r.subscribers for r in rows])]
        ),
        "err_chart": series_chart("ERR, %", days, [("ERR %", [r.err for r in rows])]),
    }


def current_binding(channel: Channel) -> Binding | None:
    """The live binding, else the most recent one (bindings must be loaded)."""
    ordered = sorted(channel.bindings, key=lambda b: b.id, reverse=True)
    return next((b for b in ordered if b.status in LIVE), ordered[0] if ordered else None)


class ChannelAdmin(ModelView, model=Channel):
    name, name_plural, icon = "Channel", "Channels", "fa-solid fa-bullhorn"
    column_list: ClassVar = [
        Channel.id,
        Channel.title,
        Channel.username,
        Channel.tg_id,
        Channel.bindings,
        Channel.reference,
        Channel.updated_at,
    ]
    column_details_list: ClassVar = [*column_list, Channel.invite_hash, Channel.created_at]
    column_labels: ClassVar = {Channel.bindings: "Binding", Channel.tg_id: "Telegram id"}
    column_formatters: ClassVar = {
        Channel.title: lambda m, a: Markup('<a href="overview/{}">{}</a>').format(
            m.id, m.title or m.reference
        ),
    }
    non_link_related_fields: ClassVar = [Channel.bindings]  # shown as the current one
    column_searchable_list: ClassVar = [Channel.title, Channel.username, Channel.reference]
    column_sortable_list: ClassVar = [Channel.id, Channel.title, Channel.updated_at]
    can_create = can_edit = can_delete = False
    details_template = "channel_details.html"

    @staticmethod
    def binding_text(channel: Channel) -> str:
        binding = current_binding(channel)
        if binding is None:
            return "not bound"
        return f"{binding.status.value} · @{binding.bot.username}"

    async def get_list_value(
        self, obj: Any, prop: str, request: Request | None = None
    ) -> tuple[Any, Any]:
        if prop == "bindings":  # one text, not the list SQLAdmin would link item by item
            return self.binding_text(obj), self.binding_text(obj)
        return await super().get_list_value(obj, prop, request)

    async def get_detail_value(
        self, obj: Any, prop: str, request: Request | None = None
    ) -> tuple[Any, Any]:
        if prop == "bindings":
            return self.binding_text(obj), self.binding_text(obj)
        return await super().get_detail_value(obj, prop, request)

    def list_query(self, request: Request) -> Select[Channel]:
        return select(Channel).options(selectinload(Channel.bindings).selectinload(Binding.bot))

    def details_query(self, request: Request) -> Select[Channel]:
        return self._stmt_by_identifier(request.path_params["pk"]).options(
            selectinload(Channel.bindings).selectinload(Binding.bot)
        )

    async def _load(self, request: Request, channel_id: int) -> Channel:
        async with core.session_for(request) as session:
            channel = (
                await session.execute(
                    select(Channel)
                    .where(Channel.id == channel_id)
                    .options(selectinload(Channel.bindings).selectinload(Binding.bot))
                )
            ).scalar_one_or_none()
        if channel is None:
            raise HTTPException(status_code=404, detail="channel not found")
        return channel

    async def _stats(self, request: Request, channel_id: int) -> list[DailyStatsOut]:
        """The last CHART_DAYS daily rows with the post analytics (stats/analytics.py)."""
        settings = core.core(request).settings
        since = datetime.now(UTC).date() - timedelta(days=CHART_DAYS)
        async with core.session_for(request) as session:
            return await analytics.daily_table(
                session,
                channel_id,
                start=since,
                end=None,
                timezone=settings.timezone,
                ages=settings.post_ages,
            )

    async def _history(self, request: Request, channel: Channel) -> list[dict[str, Any]]:
        """The current binding's moves, losses and recoveries, oldest first."""
        binding = current_binding(channel)
        if binding is None:
            return []
        async with core.session_for(request) as session:
            events = await failover.history(session, binding.id)
            ids = {e.from_bot_id for e in events} | {e.to_bot_id for e in events}
            names = dict(
                (await session.execute(select(Bot.id, Bot.username).where(Bot.id.in_(ids)))).all()
            )
        return [
            {
                "at": e.at,
                "from": names.get(e.from_bot_id) if e.from_bot_id else None,
                "to": names.get(e.to_bot_id) if e.to_bot_id else None,
                "why": e.why,
            }
            for e in events
        ]

    @expose("/overview/{pk:int}", methods=["GET"])
    async def overview(self, request: Request) -> Response:
        channel = await self._load(request, request.path_params["pk"])
        stats = await self._stats(request, channel.id)
        days = [s.day for s in stats]
        context: dict[str, Any] = {
            "model_view": self,
            "channel": channel,
            "binding": current_binding(channel),
            "history": await self._history(request, channel),
            "bot_api_id": to_bot_api_id(channel.tg_id) if channel.tg_id else None,
            "posts_chart": daily_chart("Posts per day", days, [s.posts for s in stats], bars=True),
            "views_chart": daily_chart(
                "Views per day", days, [s.views for s in stats], color="#2fb344"
            ),
            **analytics_charts(days, stats),
            "latest": stats[-1] if stats else None,
            "chart_days": CHART_DAYS,
            "actions": {
                slug: self._url_for_action(request, slug) for slug in ("collect-stats", "unbind")
            },
            "title": channel.title or channel.reference,
        }
        return await self.templates.TemplateResponse(request, "channel_overview.html", context)

    @expose("/post/{pk:int}", methods=["POST"])
    async def post_message(self, request: Request) -> Response:
        channel = await self._load(request, request.path_params["pk"])
        form = await request.form()
        markdown = form.get("message")
        label = f"post to {channel.title or channel.reference}"
        if not isinstance(markdown, str) or not markdown.strip():
            core.remember(request, label, error="the message is empty")
            return core.to_outcomes(request, 1)
        if channel.tg_id is None:
            core.remember(request, label, error="the channel has no Telegram id yet")
            return core.to_outcomes(request, 1)
        post_id: int | None = None
        try:
            async with core.unit(request) as unit:
                post = await posts.create(unit, channel_id=channel.tg_id, markdown=markdown)
                post_id, task_id = post.id, post.task_id
        except AppError as exc:
            if post_id is None:  # refused before it was recorded
                core.remember(request, label, error=exc.message)
            else:  # recorded, then the queue refused it: the post is failed
                core.remember(
                    request, f"{label} (post {post_id})", task=SEND_POST, error=exc.message
                )
            return core.to_outcomes(request, 1)
        core.remember(request, f"{label} (post {post_id})", task_id=task_id, task=SEND_POST)
        return core.to_outcomes(request, 1)

    @action(
        "collect-stats",
        "Collect stats now",
        confirmation_message="Collect these channels' statistics from Telegram now?",
    )
    async def collect_stats(self, request: Request) -> Response:
        return await core.request_each(
            request, "collect stats of channel {}", stats.request_collection
        )

    @action("unbind", "Unbind", confirmation_message="Unbind these channels from their bots?")
    async def unbind(self, request: Request) -> Response:
        ids = core.pks(request)
        for channel_id in ids:
            label = f"unbind channel {channel_id}"

            async def unbind(unit: UnitOfWork, channel_id: int = channel_id) -> UnboundOut:
                return await channels.unbind_row(unit.session, channel_id)

            try:
                out = await core.in_unit(request, unbind)
            except AppError as exc:
                core.remember(request, label, error=exc.message)
                continue
            state = out.binding.status if out.binding else "not bound"
            core.remember(request, label, note=f"binding is now {state}")
        return core.to_outcomes(request, len(ids))
