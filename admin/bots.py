"""Bots: list and details with the token masked; create and re-token through the bots
service (the token is checked with Telegram); "check token now"."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ValidationError
from sqladmin import ModelView, action
from sqladmin.filters import StaticValuesFilter
from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload
from starlette.requests import Request
from starlette.responses import Response
from wtforms import Form, PasswordField, StringField, TextAreaField
from wtforms.validators import Length, Optional, Regexp

from admin import core
from admin.formatting import badge, choices, short
from botmgr.bots import service as bots
from botmgr.bots.schemas import TOKEN_PATTERN, BotIn, BotPatch
from botmgr.errors import AppError
from botmgr.models import Bot, BotStatus
from botmgr.security import mask_token


def _token_field(required: bool) -> PasswordField:
    hint = "checked with Telegram; stored encrypted, never shown again"
    validators = [Regexp(TOKEN_PATTERN, message="a bot token looks like 123456:ABC-DEF…")]
    return PasswordField(
        "Token",
        validators=[] if required else [Optional(), *validators],
        description=hint if required else f"leave empty to keep; {hint}",
    )


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
    column_list: ClassVar = [
        Bot.id,
        Bot.username,
        Bot.alias,
        Bot.status,
        Bot.status_reason,
        Bot.bindings,
        Bot.token_encrypted,
        Bot.last_checked_at,
    ]
    column_details_list: ClassVar = [
        Bot.id,
        Bot.tg_id,
        Bot.username,
        Bot.first_name,
        Bot.name,
        Bot.alias,
        Bot.description,
        Bot.status,
        Bot.status_reason,
        Bot.bindings,
        Bot.token_encrypted,
        Bot.last_checked_at,
        Bot.created_at,
        Bot.updated_at,
    ]
    column_labels: ClassVar = {
        Bot.token_encrypted: "Token",
        Bot.status_reason: "Reason",
        Bot.bindings: "Bindings",
    }
    column_formatters: ClassVar = {
        Bot.status: lambda m, a: badge(m.status),
        Bot.status_reason: lambda m, a: short(m.status_reason),
    }
    column_formatters_detail: ClassVar = {Bot.status: lambda m, a: badge(m.status)}
    non_link_related_fields: ClassVar = [Bot.bindings]  # shown as counts per status
    column_searchable_list: ClassVar = [Bot.username, Bot.alias]
    column_filters: ClassVar = [StaticValuesFilter(Bot.status, choices(BotStatus))]
    column_sortable_list: ClassVar = [Bot.id, Bot.username, Bot.status, Bot.last_checked_at]
    form_create_rules: ClassVar = ["token", "name", "alias", "description"]
    form_edit_rules: ClassVar = ["token", "name", "alias", "description"]
    can_delete = False
    can_export = False

    def list_query(self, request: Request) -> Select[Bot]:
        return select(Bot).options(selectinload(Bot.bindings))

    def details_query(self, request: Request) -> Select[Bot]:
        return super().details_query(request).options(selectinload(Bot.bindings))

    def form_edit_query(self, request: Request) -> Select[Bot]:
        return self._stmt_by_identifier(request.path_params["pk"])

    async def scaffold_form(self, rules: list[str] | None = None) -> type[Form]:
        # SQLAdmin scaffolds create and edit with the same call; the rules tell them apart.
        return BotEditForm if rules is self._form_edit_rules else BotCreateForm

    async def get_form_data_for_edit(self, obj: Any) -> dict[str, Any]:
        return {"name": obj.name, "alias": obj.alias, "description": obj.description}

    async def _value(self, obj: Bot, prop: str, request: Request | None) -> Any:
        if prop == "token_encrypted":
            try:
                return (
                    mask_token(core.cipher_of(request).decrypt(obj.token_encrypted))
                    if request is not None
                    else "****"
                )
            except ValueError:
                return "**** (undecryptable)"
        if prop == "bindings":
            counts: dict[str, int] = {}
            for b in obj.bindings:
                counts[b.status.value] = counts.get(b.status.value, 0) + 1
            return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"
        return None

    async def get_list_value(
        self, obj: Any, prop: str, request: Request | None = None
    ) -> tuple[Any, Any]:
        if prop in ("token_encrypted", "bindings"):
            value = await self._value(obj, prop, request)
            return value, value
        return await super().get_list_value(obj, prop, request)

    async def get_detail_value(
        self, obj: Any, prop: str, request: Request | None = None
    ) -> tuple[Any, Any]:
        if prop in ("token_encrypted", "bindings"):
            value = await self._value(obj, prop, request)
            return value, value
        return await super().get_detail_value(obj, prop, request)

    async def insert_model(self, request: Request, data: dict[str, Any]) -> Any:
        state = core.core(request)
        if state.gateway is None:
            raise ValueError("the Telegram gateway is not available")
        try:
            body = BotIn(
                token=data["token"] or "",
                name=data.get("name") or None,
                alias=data.get("alias") or "",
                description=data.get("description") or "",
            )
        except ValidationError as exc:
            raise _clean(exc) from None
        try:
            async with core.unit(request) as unit:
                bot_id, _ = await bots.register(
                    unit.session, body, gateway=state.gateway, cipher=state.cipher
                )
                return await bots.get(unit.session, bot_id)  # the row SQLAdmin shows next
        except AppError as exc:
            raise _refusal(exc) from None

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Any:
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
        try:
            async with core.unit(request) as unit:
                return await bots.update_bot(
                    unit.session, int(pk), patch, gateway=state.gateway, cipher=state.cipher
                )
        except AppError as exc:
            raise _refusal(exc) from None

    @action(
        "check-token",
        "Check token now",
        confirmation_message="Ask Telegram whether these bots' tokens still work?",
    )
    async def check_token(self, request: Request) -> Response:
        return await core.request_each(request, "check token of bot {}", bots.request_token_check)
