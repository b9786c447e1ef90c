"""Model views: bots, bindings, posts, daily statistics (channels: admin/channels.py).

Relationships are ``lazy="raise"`` in the models, so every view that shows a related row
loads it in its own list/details query."""

from __future__ import annotations

from typing import Any, ClassVar

from markupsafe import Markup
from pydantic import ValidationError
from sqladmin import ModelView, action
from sqladmin.filters import ForeignKeyFilter, OperationColumnFilter, StaticValuesFilter
from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload
from starlette.requests import Request
from starlette.responses import Response
from wtforms import Form, PasswordField, StringField, TextAreaField
from wtforms.validators import Length, Optional, Regexp

from admin import core
from botmgr.bots import service as bots
from botmgr.bots.schemas import TOKEN_PATTERN, BotIn, BotPatch
from botmgr.errors import AppError
from botmgr.models import Binding, BindingStatus, Bot, BotStatus, Channel, ChannelStats, Post
from botmgr.models import PostStatus as PostStatusEnum
from botmgr.posts.service import post_link
from botmgr.security import mask_token


def _choices(enum: Any) -> list[tuple[str, str]]:
    return [(m.value, m.value) for m in enum]


_COLOURS = {"active": "green", "sent": "green", "new": "blue", "queued": "blue",
            "invalid": "red", "failed": "red"}


def badge(value: Any) -> Markup:
    text = getattr(value, "value", value)
    colour = _COLOURS.get(str(text), "secondary")
    return Markup('<span class="badge bg-{}-lt">{}</span>').format(colour, text)


def short(text: str | None, limit: int = 36) -> Markup | str:
    """Long reasons and errors stay one line in lists; the full text is the tooltip."""
    if not text or len(text) <= limit:
        return text or ""
    return Markup('<span title="{}">{}…</span>').format(text, text[:limit].rstrip())


def _token_field(required: bool) -> PasswordField:
    hint = "checked with Telegram; stored encrypted, never shown again"
    validators = [Regexp(TOKEN_PATTERN, message="a bot token looks like 123456:ABC-DEF…")]
    return PasswordField("Token", validators=[] if required else [Optional(), *validators],
                         description=hint if required else f"leave empty to keep; {hint}")


class BotCreateForm(Form):
    token = _token_field(required=True)
    name = StringField("Name (@username)", validators=[Optional(), Length(max=64)])
    alias = StringField("Alias", validators=[Length(max=255)])
    description = TextAreaField("Description", validators=[Length(max=10_000)])


class BotEditForm(BotCreateForm):
    token = _token_field(required=False)


def _clean(exc: ValidationError) -> ValueError:
    # str(ValidationError) quotes the input — here a token: never let it reach a log.
    fields = ", ".join(str(e["loc"][-1]) for e in exc.errors(include_input=False))
    return ValueError(f"invalid value for: {fields}")


def _refusal(exc: AppError) -> ValueError:
    return ValueError(exc.message)


class BotAdmin(ModelView, model=Bot):
    name, name_plural, icon = "Bot", "Bots", "fa-solid fa-robot"
    column_list: ClassVar = [Bot.id, Bot.username, Bot.alias, Bot.status, Bot.status_reason,
                             Bot.bindings, Bot.token_encrypted, Bot.last_checked_at]
    column_details_list: ClassVar = [
        Bot.id, Bot.tg_id, Bot.username, Bot.first_name, Bot.name, Bot.alias, Bot.description,
        Bot.status, Bot.status_reason, Bot.bindings, Bot.token_encrypted, Bot.last_checked_at,
        Bot.created_at, Bot.updated_at]
    column_labels: ClassVar = {Bot.token_encrypted: "Token", Bot.status_reason: "Reason",
                               Bot.bindings: "Bindings"}
    column_formatters: ClassVar = {Bot.status: lambda m, a: badge(m.status),
                                   Bot.status_reason: lambda m, a: short(m.status_reason)}
    column_formatters_detail: ClassVar = {Bot.status: lambda m, a: badge(m.status)}
    non_link_related_fields: ClassVar = [Bot.bindings]  # shown as counts per status
    column_searchable_list: ClassVar = [Bot.username, Bot.alias]
    column_filters: ClassVar = [StaticValuesFilter(Bot.status, _choices(BotStatus))]
    column_sortable_list: ClassVar = [Bot.id, Bot.username, Bot.status, Bot.last_checked_at]
    form_create_rules: ClassVar = ["token", "name", "alias", "description"]
    form_edit_rules: ClassVar = ["token", "name", "alias", "description"]
    can_delete = False
    can_export = False

    def list_query(self, request: Request) -> Select:
        return select(Bot).options(selectinload(Bot.bindings))

    def details_query(self, request: Request) -> Select:
        return super().details_query(request).options(selectinload(Bot.bindings))

    def form_edit_query(self, request: Request) -> Select:
        return self._stmt_by_identifier(request.path_params["pk"])

    async def scaffold_form(self, rules: list[str] | None = None) -> type[Form]:
        # SQLAdmin scaffolds create and edit with the same call; the rules tell them apart.
        return BotEditForm if rules is self._form_edit_rules else BotCreateForm

    async def get_form_data_for_edit(self, obj: Any) -> dict[str, Any]:
        return {"name": obj.name, "alias": obj.alias, "description": obj.description}

    async def _value(self, obj: Bot, prop: str, request: Request | None) -> Any:
        if prop == "token_encrypted":
            try:
                return mask_token(core.cipher_of(request).decrypt(obj.token_encrypted)) \
                    if request is not None else "****"
            except ValueError:
                return "**** (undecryptable)"
        if prop == "bindings":
            counts: dict[str, int] = {}
            for b in obj.bindings:
                counts[b.status.value] = counts.get(b.status.value, 0) + 1
            return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"
        return None

    async def get_list_value(self, obj: Any, prop: str,
                             request: Request | None = None) -> tuple[Any, Any]:
        if prop in ("token_encrypted", "bindings"):
            value = await self._value(obj, prop, request)
            return value, value
        return await super().get_list_value(obj, prop, request)

    async def get_detail_value(self, obj: Any, prop: str,
                               request: Request | None = None) -> tuple[Any, Any]:
        if prop in ("token_encrypted", "bindings"):
            value = await self._value(obj, prop, request)
            return value, value
        return await super().get_detail_value(obj, prop, request)

    async def insert_model(self, request: Request, data: dict) -> Any:
        state = core.core(request)
        if state.gateway is None:
            raise ValueError("the Telegram gateway is not available")
        try:
            body = BotIn(token=data["token"] or "", name=data.get("name") or None,
                         alias=data.get("alias") or "", description=data.get("description") or "")
        except ValidationError as exc:
            raise _clean(exc) from None
        async with core.session_for(request) as session:
            try:
                bot_id, _ = await bots.register(session, body, gateway=state.gateway,
                                                cipher=state.cipher)
            except AppError as exc:
                raise _refusal(exc) from None
            await session.commit()
            return await bots.get(session, bot_id)

    async def update_model(self, request: Request, pk: str, data: dict) -> Any:
        state = core.core(request)
        values = {k: data.get(k) for k in ("alias", "description", "name")}
        if data.get("token"):
            if state.gateway is None:
                raise ValueError("the Telegram gateway is not available")
            values["token"] = data["token"]
        try:
            patch = BotPatch(**values)
        except ValidationError as exc:
            raise _clean(exc) from None
        async with core.session_for(request) as session:
            try:
                bot = await bots.update_bot(session, int(pk), patch, gateway=state.gateway,
                                            cipher=state.cipher)
            except AppError as exc:
                raise _refusal(exc) from None
            await session.commit()
            return bot

    @action("check-token", "Check token now",
            confirmation_message="Ask Telegram whether these bots' tokens still work?")
    async def check_token(self, request: Request) -> Response:
        ids = core.pks(request)
        for bot_id in ids:
            await core.enqueue(request, f"check token of bot {bot_id}", core.CHECK_BOT, [bot_id])
        return core.to_outcomes(request, len(ids))


def _channel_label(channel: Channel | None) -> str:
    if channel is None:
        return "—"
    return channel.title or (f"@{channel.username}" if channel.username else channel.reference)


class BindingAdmin(ModelView, model=Binding):
    name, name_plural, icon = "Binding", "Bindings", "fa-solid fa-link"
    column_list: ClassVar = [Binding.id, Binding.channel, Binding.bot, Binding.status,
                             Binding.reason, Binding.last_checked_at, Binding.updated_at]
    column_details_list: ClassVar = [*column_list, Binding.task_id, Binding.created_at]
    column_labels: ClassVar = {Binding.last_checked_at: "Last check"}
    column_formatters: ClassVar = {
        Binding.channel: lambda m, a: _channel_label(m.channel),
        Binding.bot: lambda m, a: f"@{m.bot.username}",
        Binding.status: lambda m, a: badge(m.status),
        Binding.reason: lambda m, a: short(m.reason),
    }
    column_formatters_detail: ClassVar = {
        Binding.channel: lambda m, a: _channel_label(m.channel),
        Binding.bot: lambda m, a: f"@{m.bot.username}",
        Binding.status: lambda m, a: badge(m.status),
    }
    column_searchable_list: ClassVar = ["channel.title", "channel.username", "channel.reference"]
    column_filters: ClassVar = [
        StaticValuesFilter(Binding.status, _choices(BindingStatus)),
        ForeignKeyFilter(Binding.bot_id, Bot.username, foreign_model=Bot, title="Bot"),
    ]
    column_sortable_list: ClassVar = [Binding.id, Binding.status, Binding.last_checked_at]
    column_default_sort: ClassVar = [(Binding.id, True)]
    can_create = can_edit = can_delete = False

    def list_query(self, request: Request) -> Select:
        return select(Binding).options(selectinload(Binding.channel), selectinload(Binding.bot))

    def details_query(self, request: Request) -> Select:
        return super().details_query(request).options(
            selectinload(Binding.channel), selectinload(Binding.bot))

    @action("check-rights", "Check rights now",
            confirmation_message="Ask Telegram whether these bots can still post?")
    async def check_rights(self, request: Request) -> Response:
        ids = core.pks(request)
        for binding_id in ids:
            await core.enqueue(request, f"check rights of binding {binding_id}",
                               core.CHECK_BINDING, [binding_id])
        return core.to_outcomes(request, len(ids))


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
        return Markup('<a href="{}">{}</a>').format(url, _channel_label(channel))

    async def get_list_value(self, obj: Any, prop: str,
                             request: Request | None = None) -> tuple[Any, Any]:
        if prop in ("channel_id", "message_id"):
            return getattr(obj, prop), self._cell(obj, prop)
        return await super().get_list_value(obj, prop, request)

    async def get_detail_value(self, obj: Any, prop: str,
                               request: Request | None = None) -> tuple[Any, Any]:
        if prop in ("channel_id", "message_id"):
            return getattr(obj, prop), self._cell(obj, prop)
        return await super().get_detail_value(obj, prop, request)


class PostAdmin(WithChannel, model=Post):
    name, name_plural, icon = "Post", "Posts", "fa-solid fa-paper-plane"
    column_list: ClassVar = [Post.id, Post.channel_id, Post.status, Post.error, Post.message_id,
                             Post.created_at, Post.sent_at]
    column_details_list: ClassVar = [*column_list, Post.markdown, Post.task_id, Post.binding_id]
    column_labels: ClassVar = {Post.message_id: "Telegram link", Post.channel_id: "Channel"}
    column_filters: ClassVar = [
        StaticValuesFilter(Post.status, _choices(PostStatusEnum)),
        ForeignKeyFilter(Post.channel_id, Channel.title, foreign_model=Channel, title="Channel"),
    ]
    column_formatters: ClassVar = {Post.status: lambda m, a: badge(m.status),
                                   Post.error: lambda m, a: short(m.error)}
    column_formatters_detail: ClassVar = {Post.status: lambda m, a: badge(m.status)}
    column_searchable_list: ClassVar = [Post.markdown, Post.error]
    column_sortable_list: ClassVar = [Post.id, Post.status, Post.created_at, Post.sent_at]
    column_default_sort: ClassVar = [(Post.id, True)]
    can_create = can_edit = can_delete = False

    def _cell(self, obj: Any, prop: str) -> Any:
        if prop == "channel_id":
            return super()._cell(obj, prop)
        channel = getattr(obj, "console_channel", None)
        link = post_link(channel, obj.message_id) if channel is not None else None
        if link is None:
            return "sent (id unknown)" if obj.status == PostStatusEnum.sent else "—"
        return Markup('<a href="{0}" target="_blank" rel="noopener">{0}</a>').format(link)


class StatsAdmin(WithChannel, model=ChannelStats):
    name, name_plural, icon = "Daily stats", "Daily stats", "fa-solid fa-chart-line"
    column_list: ClassVar = [ChannelStats.day, ChannelStats.channel_id, ChannelStats.posts,
                             ChannelStats.views, ChannelStats.subscribers,
                             ChannelStats.collected_at]
    column_labels: ClassVar = {ChannelStats.channel_id: "Channel"}
    column_filters: ClassVar = [
        ForeignKeyFilter(ChannelStats.channel_id, Channel.title, foreign_model=Channel,
                         title="Channel"),
        OperationColumnFilter(ChannelStats.day, title="Day"),
    ]
    column_sortable_list: ClassVar = [ChannelStats.day, ChannelStats.posts, ChannelStats.views,
                                      ChannelStats.subscribers]
    column_default_sort: ClassVar = [(ChannelStats.day, True)]
    can_create = can_edit = can_delete = False
