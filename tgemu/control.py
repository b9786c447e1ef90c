"""The control API: HTTP JSON for tests and operators to shape the emulated world.

Served on the loopback interface only (see ``tgemu.app``). Channel ids in paths may be
the bare MTProto id or the Bot API ``-100…`` form.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tgemu.control_messages import ROUTES as MESSAGE_ROUTES
from tgemu.control_messages import Endpoint, parse, path_int
from tgemu.world import Channel, User, WorldError

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


class DifferenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    too_long: bool | None = None
    limit_invalid: bool | None = None
    pts_invalid: bool | None = None
    stream_edits: bool | None = None
    too_long_messages: int | None = Field(default=None, ge=0)


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
    edit_time_limit: int | None = None  # seconds; 0: posts may always be edited
    delete_time_limit: int | None = None  # seconds; 0: no limit (48 hours by default)
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


# -- bots and users --------------------------------------------------------------------


async def create_bot(emu: Emulator, request: Request) -> tuple[int, dict]:
    body = await parse(request, BotIn)
    known = emu.dispatcher.server.ports()
    if body.dc_id is not None and body.dc_id not in known:
        raise WorldError(422, f"no DC {body.dc_id}; DCs are {sorted(known)}")
    dc = body.dc_id if body.dc_id is not None else emu.spread_dc()
    bot = emu.world.create_bot(body.username, body.first_name, dc)
    return 201, bot_out(bot, dc)


async def get_bot(emu: Emulator, request: Request) -> dict:
    user = emu.world.user(path_int(request, "id"))
    if user is None or not user.bot:
        raise WorldError(404, "no such bot")
    return bot_out(user, emu.dispatcher.server.home_dc(user))


async def revoke_bot(emu: Emulator, request: Request) -> dict:
    return {"token": emu.world.revoke_token(path_int(request, "id")).token}


async def create_user(emu: Emulator, request: Request) -> tuple[int, dict]:
    body = await parse(request, UserIn)
    user = emu.world.create_user(body.first_name, body.username)
    return 201, {"id": user.id, "username": user.username, "first_name": user.first_name}


# -- channels ----------------------------------------------------------------------------


async def create_channel(emu: Emulator, request: Request) -> tuple[int, dict]:
    body = await parse(request, ChannelIn)
    return 201, channel_out(emu.world.create_channel(body.title, body.username))


async def get_channel(emu: Emulator, request: Request) -> dict:
    channel = emu.world.channel(path_int(request, "id"))
    if channel is None:
        raise WorldError(404, "no such channel")
    return channel_out(channel)


async def delete_channel(emu: Emulator, request: Request) -> dict:
    emu.world.delete_channel(path_int(request, "id"))
    return {"ok": True}


async def put_admin(emu: Emulator, request: Request) -> dict:
    body = json.loads(await request.body() or b"{}")
    if not isinstance(body, dict) or not all(isinstance(v, bool) for v in body.values()):
        raise ValueError("body must map admin right names to booleans")
    member = emu.world.set_admin(path_int(request, "id"), path_int(request, "user_id"), body)
    return member.model_dump()


async def delete_admin(emu: Emulator, request: Request) -> dict:
    return emu.world.demote(path_int(request, "id"), path_int(request, "user_id")).model_dump()


async def put_member(emu: Emulator, request: Request) -> dict:
    return emu.world.add_member(path_int(request, "id"), path_int(request, "user_id")).model_dump()


async def delete_member(emu: Emulator, request: Request) -> dict:
    emu.world.remove_member(path_int(request, "id"), path_int(request, "user_id"))
    return {"ok": True}


# -- faults, metrics, config, reset ------------------------------------------------------


async def add_fault(emu: Emulator, request: Request) -> tuple[int, dict]:
    body = await parse(request, FaultIn)
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
        "edit_time_limit": behaviour.edit_time_limit,
        "delete_time_limit": behaviour.delete_time_limit,
        "dcs": emu.dc_addresses(),
        **vars(emu.dispatcher.server.rules),
        "bot_dcs": emu.bot_dcs or sorted(emu.servers),
    }


async def get_config(emu: Emulator, request: Request) -> dict:
    return config_out(emu)


async def put_config(emu: Emulator, request: Request) -> dict:
    body = await parse(request, ConfigIn)
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
    for limit in ("edit_time_limit", "delete_time_limit"):
        if getattr(body, limit) is not None:
            setattr(behaviour, limit, max(0, getattr(body, limit)))
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
    *MESSAGE_ROUTES,
    ("/faults", "POST", add_fault),
    ("/faults", "GET", list_faults),
    ("/faults", "DELETE", clear_faults),
    ("/metrics", "GET", metrics),
    ("/config", "GET", get_config),
    ("/config", "PUT", put_config),
    ("/reset", "POST", reset),
]
