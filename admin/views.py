"""Model views: bindings, daily statistics (bots: admin/bots.py, channels:
admin/channels.py, posts: admin/posts.py).

Relationships are ``lazy="raise"`` in the models, so every view that shows a related row
loads it in its own list/details query."""

from __future__ import annotations

from typing import Any, ClassVar

from markupsafe import Markup
from sqladmin import ModelView, action
from sqladmin.filters import ForeignKeyFilter, OperationColumnFilter, StaticValuesFilter
from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload
from starlette.requests import Request
from starlette.responses import Response

from admin import core
from admin.formatting import badge, channel_label, choices, short
from botmgr.channels import service as channel_service
from botmgr.models import Binding, BindingStatus, Bot, Channel, ChannelStats


class BindingAdmin(ModelView, model=Binding):
    name, name_plural, icon = "Binding", "Bindings", "fa-solid fa-link"
    column_list: ClassVar = [
        Binding.id,
        Binding.channel,
        Binding.bot,
        Binding.status,
        Binding.reason,
        Binding.last_checked_at,
        Binding.updated_at,
    ]
    column_details_list: ClassVar = [*column_list, Binding.task_id, Binding.created_at]
    column_labels: ClassVar = {Binding.last_checked_at: "Last check"}
    column_formatters: ClassVar = {
        Binding.channel: lambda m, a: channel_label(m.channel),
        Binding.bot: lambda m, a: f"@{m.bot.username}",
        Binding.status: lambda m, a: badge(m.status),
        Binding.reason: lambda m, a: short(m.reason),
    }
    column_formatters_detail: ClassVar = {
        Binding.channel: lambda m, a: channel_label(m.channel),
        Binding.bot: lambda m, a: f"@{m.bot.username}",
        Binding.status: lambda m, a: badge(m.status),
    }
    column_searchable_list: ClassVar = ["channel.title", "channel.username", "channel.reference"]
    column_filters: ClassVar = [
        StaticValuesFilter(Binding.status, choices(BindingStatus)),
        ForeignKeyFilter(Binding.bot_id, Bot.username, foreign_model=Bot, title="Bot"),
    ]
    column_sortable_list: ClassVar = [Binding.id, Binding.status, Binding.last_checked_at]
    column_default_sort: ClassVar = [(Binding.id, True)]
    can_create = can_edit = can_delete = False

    def list_query(self, request: Request) -> Select[Binding]:
        return select(Binding).options(selectinload(Binding.channel), selectinload(Binding.bot))

    def details_query(self, request: Request) -> Select[Binding]:
        return (
            super()
            .details_query(request)
            .options(selectinload(Binding.channel), selectinload(Binding.bot))
        )

    @action(
        "check-rights",
        "Check rights now",
        confirmation_message="Ask Telegram whether these bots can still post?",
    )
    async def check_rights(self, request: Request) -> Response:
        return await core.request_each(
            request,
            "check rights of binding {}",
            lambda unit, pk: channel_service.request_check(unit, binding_id=pk),
        )


class WithChannel(ModelView):
    """Rows with a ``channel_id`` but no relationship to Channel in the model: the page's
    channels are loaded in one query and shown by title."""

    async def _channels(self, rows: list[Any]) -> dict[int, Channel]:
        ids = {r.channel_id for r in rows}
        if not ids:
            return {}
        async with self.session_maker() as session:
            result = await session.execute(select(Channel).where(Channel.id.in_(ids)))
            return {c.id: c for c in result.scalars()}

    async def list(self, request: Request) -> Any:
        page = await super().list(request)
        channels = await self._channels(list(page.rows))
        for row in page.rows:
            row.console_channel = channels.get(row.channel_id)
        return page

    async def get_object_for_details(self, request: Request) -> Any:
        row = await super().get_object_for_details(request)
        if row is not None:
            row.console_channel = (await self._channels([row])).get(row.channel_id)
        return row

    def _cell(self, obj: Any, prop: str) -> Any:
        channel = getattr(obj, "console_channel", None)
        url = f"{self._admin_ref.base_url}/channel/overview/{obj.channel_id}"
        return Markup('<a href="{}">{}</a>').format(url, channel_label(channel))

    async def get_list_value(
        self, obj: Any, prop: str, request: Request | None = None
    ) -> tuple[Any, Any]:
        if prop in ("channel_id", "message_id"):
            return getattr(obj, prop), self._cell(obj, prop)
        return await super().get_list_value(obj, prop, request)

    async def get_detail_value(
        self, obj: Any, prop: str, request: Request | None = None
    ) -> tuple[Any, Any]:
        if prop in ("channel_id", "message_id"):
            return getattr(obj, prop), self._cell(obj, prop)
        return await super().get_detail_value(obj, prop, request)


class StatsAdmin(WithChannel, model=ChannelStats):
    name, name_plural, icon = "Daily stats", "Daily stats", "fa-solid fa-chart-line"
    column_list: ClassVar = [
        ChannelStats.day,
        ChannelStats.channel_id,
        ChannelStats.posts,
        ChannelStats.views,
        ChannelStats.subscribers,
        ChannelStats.collected_at,
    ]
    column_labels: ClassVar = {ChannelStats.channel_id: "Channel"}
    column_filters: ClassVar = [
        ForeignKeyFilter(
            ChannelStats.channel_id, Channel.title, foreign_model=Channel, title="Channel"
        ),
        OperationColumnFilter(ChannelStats.day, title="Day"),
    ]
    column_sortable_list: ClassVar = [
        ChannelStats.day,
        ChannelStats.posts,
        ChannelStats.views,
        ChannelStats.subscribers,
    ]
    column_default_sort: ClassVar = [(ChannelStats.day, True)]
    can_create = can_edit = can_delete = False
