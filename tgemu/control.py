"""The control API: HTTP JSON for tests and operators to shape the emulated world.

Served on the loopback interface only (see ``tgemu.app``). Channel ids in paths may be
the bare MTProto id or the Bot API ``-100…`` form.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tgemu.methods.render import entity_from_dict
from tgemu.world import Channel, Message, User, WorldError

if TYPE_CHECKING:
    from tgemu.app import Emulator


class BotIn(BaseModel):
    username: str
    first_name: str | None = None
    dc_id: int | None = None  # home DC; default: round robin over the DCs


class UserIn(BaseModel):
    first_name: str
    username: str | None = None


class ChannelIn(BaseModel):
    title: str
    username: str | None = None


class MessageIn(BaseModel):
    text: str
    date: int | None = None
    views: int = 0
    entities: list[dict] = []
    sender_id: int | None = None  # a member of the channel; its creator by default
    # N posts at once (ids and pts consecutive): a long stream without N HTTP calls
    count: int = Field(default=1, ge=1, le=1_000_000)


class EditIn(BaseModel):
    text: str | None = None
    # N edits in one record (pts + N): a gap of 100,000+ updates in one call
    times: int = Field(default=1, ge=1, le=10_000_000)


class PinIn(BaseModel):
    pinned: bool = True


class DeleteIn(BaseModel):
    ids: list[int]


class DifferenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    too_long: bool | None = None
    limit_invalid: bool | None = None
    pts_invalid: bool | None = None
    stream_edits: bool | None = None
    too_long_messages: int | None = Field(default=None, ge=0)


class ViewsIn(BaseModel):
    views: int


class FaultIn(BaseModel):
    method: str
    error: str
    times: int = 1
    bot_id: int | None = None
    code: int | None = None


class ConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    latency_ms: int | None = None
    rate_limits: bool | dict[str, float | bool] | None = None
    difference: DifferenceIn | None = None
    floods: bool | dict[str, float | bool] | None = None
    random_id_duplicate: Literal["error", "original"] | None = None
    qts_retention_seconds: int | None = None
    qts_drop_confirmed: bool | None = None
    # The DC rules of tgemu.dcs, each on by default.
    dc_migration: bool | None = None
    auth_key_per_dc: bool | None = None
    auth_key_duplicated: bool | None = None
    bot_dcs: list[int] | None = None  # home DCs for new bots without dc_id; []: every DC


def bot_out(user: User, dc_id: int | None = None) -> dict[str, Any]:
    return {
        "id": user.id,
        "token": user.token,
        "username": user.username,
        "first_name": user.first_name,
        "dc_id": dc_id,
    }


def channel_out(channel: Channel) -> dict[str, Any]:
    return {
        "id": channel.id,
        "bot_api_id": channel.bot_api_id,
        "title": channel.title,
        "username": channel.username,
        "invite_link": channel.invite_link,
        "creator_id": channel.creator_id,
        "pts": channel.pts,
        "deleted": channel.deleted,
        "members": [m.model_dump() for m in channel.members.values()],
    }


def message_out(msg: Message) -> dict[str, Any]:
    return {
        "id": msg.id,
        "date": msg.date,
        "text": msg.text,
        "entities": msg.entities,
        "views": msg.views,
        "sender_id": msg.sender_id,
        "random_id": msg.random_id,
        "pts": msg.pts,
    }


Endpoint = Callable[["Emulator", Request], Awaitable[Any]]


def build_app(emu: Emulator) -> Starlette:
    def route(path: str, endpoint: Endpoint, method: str) -> Route:
        async def handle(request: Request) -> JSONResponse:
            try:
                result = await endpoint(emu, request)
            except WorldError as e:
                return JSONResponse({"error": e.message}, status_code=e.status)
            except ValidationError as e:
                return JSONResponse({"error": e.errors(include_url=False)}, status_code=422)
            except ValueError as e:
                return JSONResponse({"error": str(e)}, status_code=422)
            status, body = result if isinstance(result, tuple) else (200, result)
            return JSONResponse(body, status_code=status)

        return Route(path, handle, methods=[method])

    return Starlette(routes=[route(path, endpoint, method) for path, method, endpoint in ROUTES])


async def _body(request: Request, model: type[BaseModel]) -> Any:
    raw = await request.body()
    return model.model_validate_json(raw or b"{}")


def _int(request: Request, name: str) -> int:
    try:
        return int(request.path_params[name])
    except ValueError:
        raise WorldError(404, f"{name} must be an integer") from None


# -- bots and users --------------------------------------------------------------------


async def create_bot(emu: Emulator, request: Request) -> tuple[int, dict]:
    body = await _body(request, BotIn)
    known = emu.dispatcher.server.ports()
    if body.dc_id is not None and body.dc_id not in known:
        raise WorldError(422, f"no DC {body.dc_id}; DCs are {sorted(known)}")
    dc = body.dc_id if body.dc_id is not None else emu.spread_dc()
    bot = emu.world.create_bot(body.username, body.first_name, dc)
    return 201, bot_out(bot, dc)


async def get_bot(emu: Emulator, request: Request) -> dict:
    user = emu.world.user(_int(request, "id"))
    if user is None or not user.bot:
        raise WorldError(404, "no such bot")
    return bot_out(user, emu.dispatcher.server.home_dc(user))


async def revoke_bot(emu: Emulator, request: Request) -> dict:
    return {"token": emu.world.revoke_token(_int(request, "id")).token}


async def create_user(emu: Emulator, request: Request) -> tuple[int, dict]:
    body = await _body(request, UserIn)
    user = emu.world.create_user(body.first_name, body.username)
    return 201, {"id": user.id, "username": user.username, "first_name": user.first_name}


# -- channels ----------------------------------------------------------------------------


async def create_channel(emu: Emulator, request: Request) -> tuple[int, dict]:
    body = await _body(request, ChannelIn)
    return 201, channel_out(emu.world.create_channel(body.title, body.username))


async def get_channel(emu: Emulator, request: Request) -> dict:
    channel = emu.world.channel(_int(request, "id"))
    if channel is None:
        raise WorldError(404, "no such channel")
    return channel_out(channel)


async def delete_channel(emu: Emulator, request: Request) -> dict:
    emu.world.delete_channel(_int(request, "id"))
    return {"ok": True}


async def put_admin(emu: Emulator, request: Request) -> dict:
    body = json.loads(await request.body() or b"{}")
    if not isinstance(body, dict) or not all(isinstance(v, bool) for v in body.values()):
        raise ValueError("body must map admin right names to booleans")
    member = emu.world.set_admin(_int(request, "id"), _int(request, "user_id"), body)
    return member.model_dump()


async def delete_admin(emu: Emulator, request: Request) -> dict:
    return emu.world.demote(_int(request, "id"), _int(request, "user_id")).model_dump()


async def put_member(emu: Emulator, request: Request) -> dict:
    return emu.world.add_member(_int(request, "id"), _int(request, "user_id")).model_dump()


async def delete_member(emu: Emulator, request: Request) -> dict:
    emu.world.remove_member(_int(request, "id"), _int(request, "user_id"))
    return {"ok": True}


# -- messages ----------------------------------------------------------------------------


async def post_message(emu: Emulator, request: Request) -> tuple[int, dict]:
    body = await _body(request, MessageIn)
    channel = emu.world.live_channel(_int(request, "id"))
    sender = body.sender_id or channel.creator_id
    if sender not in channel.members:
        raise WorldError(409, f"user {sender} is not a member of the channel")
    for entity in body.entities:
        entity_from_dict(entity)  # refuse what Telegram would not know
    first = None
    for _ in range(body.count):
        msg = emu.world.post(
            channel,
            sender_id=sender,
            text=body.text,
            entities=body.entities,
            date=body.date,
            views=body.views,
        )
        first = first or msg
    assert first is not None
    return 201, {**message_out(msg), "first_id": first.id, "count": body.count}


def _stream(emu: Emulator) -> bool:
    return emu.dispatcher.difference.stream_edits


async def edit_message(emu: Emulator, request: Request) -> dict:
    body = await _body(request, EditIn)
    msg = emu.world.edit(
        _int(request, "id"),
        _int(request, "msg_id"),
        text=body.text,
        times=body.times,
        stream=_stream(emu),
    )
    return {**message_out(msg), "channel_pts": emu.world.live_channel(_int(request, "id")).pts}


async def pin_message(emu: Emulator, request: Request) -> dict:
    body = await _body(request, PinIn)
    cid, mid = _int(request, "id"), _int(request, "msg_id")
    msg = emu.world.pin(cid, mid, pinned=body.pinned, stream=_stream(emu))
    return {**message_out(msg), "channel_pts": emu.world.live_channel(cid).pts}


async def delete_message(emu: Emulator, request: Request) -> dict:
    cid = _int(request, "id")
    emu.world.delete_messages(cid, [_int(request, "msg_id")], stream=_stream(emu))
    return {"ok": True, "channel_pts": emu.world.live_channel(cid).pts}


async def delete_messages(emu: Emulator, request: Request) -> dict:
    body = await _body(request, DeleteIn)
    cid = _int(request, "id")
    emu.world.delete_messages(cid, body.ids, stream=_stream(emu))
    return {"ok": True, "channel_pts": emu.world.live_channel(cid).pts}


async def list_messages(emu: Emulator, request: Request) -> list:
    channel = emu.world.channel(_int(request, "id"))
    if channel is None:
        raise WorldError(404, "no such channel")
    return [message_out(m) for m in channel.messages.values()]


async def patch_message(emu: Emulator, request: Request) -> dict:
    body = await _body(request, ViewsIn)
    msg = emu.world.set_views(_int(request, "id"), _int(request, "msg_id"), body.views)
    return message_out(msg)


# -- faults, metrics, config, reset ------------------------------------------------------


async def add_fault(emu: Emulator, request: Request) -> tuple[int, dict]:
    body = await _body(request, FaultIn)
    fault = emu.dispatcher.faults.add(body.method, body.error, body.times, body.bot_id, body.code)
    return 201, fault.to_dict()


async def list_faults(emu: Emulator, request: Request) -> list:
    return [f.to_dict() for f in emu.dispatcher.faults.pending]


async def clear_faults(emu: Emulator, request: Request) -> dict:
    emu.dispatcher.faults.clear()
    return {"ok": True}


async def metrics(emu: Emulator, request: Request) -> dict:
    m = emu.dispatcher.metrics
    return {
        "calls": dict(m.calls),
        "errors": dict(m.errors),
        "flood_waits": m.flood_waits,
        "logins": {str(bot_id): n for bot_id, n in m.logins.items()},
        "connections": emu.connection_count(),
        # auth keys destroyed for live connections from two addresses at once
        "auth_key_duplicated": emu.presence.destroyed if emu.presence else 0,
    }


def config_out(emu: Emulator) -> dict:
    limits = emu.dispatcher.limiter.config
    behaviour = emu.dispatcher.behaviour
    return {
        "latency_ms": emu.dispatcher.latency_ms,
        "rate_limits": limits.enabled,
        "limits": vars(limits),
        "difference": asdict(emu.dispatcher.difference),
        "floods": vars(emu.dispatcher.floods.config),
        "random_id_duplicate": "original" if behaviour.random_id_original else "error",
        "qts_retention_seconds": behaviour.qts_retention_seconds,
        "qts_drop_confirmed": behaviour.qts_drop_confirmed,
        "dcs": emu.dc_addresses(),
        **vars(emu.dispatcher.server.rules),
        "bot_dcs": emu.bot_dcs or sorted(emu.servers),
    }


async def get_config(emu: Emulator, request: Request) -> dict:
    return config_out(emu)


async def put_config(emu: Emulator, request: Request) -> dict:
    body = await _body(request, ConfigIn)
    if body.latency_ms is not None:
        emu.dispatcher.latency_ms = max(0, body.latency_ms)
    if isinstance(body.rate_limits, bool):
        emu.dispatcher.limiter.reconfigure(enabled=body.rate_limits)
        if body.floods is None:  # "no rate limits" means none at all, as --no-rate-limits
            emu.dispatcher.floods.reconfigure(enabled=body.rate_limits)
    elif body.rate_limits is not None:
        emu.dispatcher.limiter.reconfigure(**body.rate_limits)
    if body.difference is not None:
        for name, value in body.difference.model_dump(exclude_none=True).items():
            setattr(emu.dispatcher.difference, name, value)
    if isinstance(body.floods, bool):
        emu.dispatcher.floods.reconfigure(enabled=body.floods)
    elif body.floods is not None:
        emu.dispatcher.floods.reconfigure(**body.floods)
    behaviour = emu.dispatcher.behaviour
    if body.random_id_duplicate is not None:
        behaviour.random_id_original = body.random_id_duplicate == "original"
    if body.qts_retention_seconds is not None:
        behaviour.qts_retention_seconds = max(0, body.qts_retention_seconds)
    if body.qts_drop_confirmed is not None:
        behaviour.qts_drop_confirmed = body.qts_drop_confirmed
    if body.bot_dcs is not None:
        unknown = set(body.bot_dcs) - set(emu.servers)
        if unknown:
            raise WorldError(422, f"no DC {sorted(unknown)}; DCs are {sorted(emu.servers)}")
        emu.bot_dcs = list(body.bot_dcs)
    rules = emu.dispatcher.server.rules
    for name in ("dc_migration", "auth_key_per_dc", "auth_key_duplicated"):
        value = getattr(body, name)
        if value is not None:
            setattr(rules, name, value)
    return config_out(emu)


async def reset(emu: Emulator, request: Request) -> dict:
    emu.world.reset()
    emu.dispatcher.metrics.reset()
    emu.dispatcher.faults.clear()
    emu.dispatcher.limiter.reset()
    emu.dispatcher.floods.reset()
    return {"ok": True}


async def health(emu: Emulator, request: Request) -> dict:
    return {"ok": True, "mtproto_port": emu.dispatcher.server.port}


ROUTES: list[tuple[str, str, Endpoint]] = [
    ("/health", "GET", health),
    ("/bots", "POST", create_bot),
    ("/bots/{id}", "GET", get_bot),
    ("/bots/{id}/revoke", "POST", revoke_bot),
    ("/users", "POST", create_user),
    ("/channels", "POST", create_channel),
    ("/channels/{id}", "GET", get_channel),
    ("/channels/{id}", "DELETE", delete_channel),
    ("/channels/{id}/admins/{user_id}", "PUT", put_admin),
    ("/channels/{id}/admins/{user_id}", "DELETE", delete_admin),
    ("/channels/{id}/members/{user_id}", "PUT", put_member),
    ("/channels/{id}/members/{user_id}", "DELETE", delete_member),
    ("/channels/{id}/messages", "POST", post_message),
    ("/channels/{id}/messages", "GET", list_messages),
    ("/channels/{id}/messages/{msg_id}", "PATCH", patch_message),
    ("/channels/{id}/messages/{msg_id}", "DELETE", delete_message),
    ("/channels/{id}/messages/delete", "POST", delete_messages),
    ("/channels/{id}/messages/{msg_id}/edit", "POST", edit_message),
    ("/channels/{id}/messages/{msg_id}/pin", "POST", pin_message),
    ("/faults", "POST", add_fault),
    ("/faults", "GET", list_faults),
    ("/faults", "DELETE", clear_faults),
    ("/metrics", "GET", metrics),
    ("/config", "GET", get_config),
    ("/config", "PUT", put_config),
    ("/reset", "POST", reset),
]
