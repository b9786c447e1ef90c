"""The Dispatcher the MTProto layer calls: authorization, injected faults, metrics,
latency, then the method's handler."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

from telethon.tl.tlobject import TLObject, TLRequest

from tgemu.floods import FloodBudgets

# Importing the namespace modules registers their handlers.
from tgemu.methods import (  # noqa: F401
    auth,
    channels,
    contacts,
    edits,
    help,
    media,
    messages,
    refused,
    updates,
    users,
)
from tgemu.methods.base import (
    Behaviour,
    Call,
    DifferenceRules,
    Metrics,
    ServerInfo,
    normalize_method_name,
    registry,
    tl_name,
    unauthorized,
)
from tgemu.ratelimit import RateLimiter
from tgemu.rpc import CallContext, RpcError
from tgemu.world import World


def error_code(error: str) -> int:
    """The code Telegram sends with an error of this name."""
    if error.startswith(("FLOOD_WAIT_", "FLOOD_PREMIUM_WAIT_", "SLOWMODE_WAIT_")):
        return 420
    if error in {"INTERNAL", "RPC_CALL_FAIL", "RANDOM_ID_DUPLICATE"} or error.endswith("_TIMEOUT"):
        return 500
    if error in {
        "AUTH_KEY_UNREGISTERED",
        "AUTH_KEY_INVALID",
        "USER_DEACTIVATED",
        "SESSION_REVOKED",
        "SESSION_EXPIRED",
        "SESSION_PASSWORD_NEEDED",
        "USER_DEACTIVATED_BAN",
        "AUTH_KEY_PERM_EMPTY",
    }:
        return 401
    if error == "AUTH_KEY_DUPLICATED":
        return 406  # core.telegram.org/api/errors: 406 NOT_ACCEPTABLE
    if error in {"CHAT_WRITE_FORBIDDEN", "CHAT_ADMIN_REQUIRED_403", "USER_BOT_INVALID"}:
        return 403
    return 400


@dataclass
class Fault:
    method: str  # normalized TL name, e.g. messages.sendMessage
    error: str
    code: int
    times: int
    bot_id: int | None = None

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "error": self.error,
            "code": self.code,
            "times": self.times,
            "bot_id": self.bot_id,
        }


@dataclass
class Faults:
    pending: list[Fault] = field(default_factory=list)

    def add(
        self,
        method: str,
        error: str,
        times: int = 1,
        bot_id: int | None = None,
        code: int | None = None,
    ) -> Fault:
        if not re.fullmatch(r"[A-Z0-9_]+", error):
            raise ValueError("error must be an rpc error NAME like FLOOD_WAIT_5 or INTERNAL")
        if times < 1:
            raise ValueError("times must be at least 1")
        fault = Fault(
            method=normalize_method_name(method),
            error=error,
            code=code or error_code(error),
            times=times,
            bot_id=bot_id,
        )
        self.pending.append(fault)
        return fault

    def clear(self) -> None:
        self.pending.clear()

    def take(self, method: str, bot_id: int | None) -> RpcError | None:
        for fault in self.pending:
            if fault.method == method and fault.bot_id in (None, bot_id):
                fault.times -= 1
                if fault.times <= 0:
                    self.pending.remove(fault)
                return RpcError(fault.code, fault.error)
        return None


class MethodDispatcher:
    def __init__(
        self,
        world: World,
        *,
        limiter: RateLimiter | None = None,
        floods: FloodBudgets | None = None,
        server: ServerInfo | None = None,
        latency_ms: int = 0,
    ) -> None:
        self.world = world
        self.limiter = limiter or RateLimiter()
        self.floods = floods or FloodBudgets()
        self.behaviour = Behaviour()
        self.server = server or ServerInfo()
        self.metrics = Metrics()
        self.faults = Faults()
        self.latency_ms = latency_ms
        self.difference = DifferenceRules()

    async def invoke(self, ctx: CallContext, request: TLRequest) -> TLObject:
        name = tl_name(request)
        self.metrics.calls[name] += 1
        try:
            return self._run(ctx, request, name)
        except RpcError as e:
            self.metrics.errors[f"{name} {e.message}"] += 1
            if e.code == 420:
                self.metrics.flood_waits += 1
            raise
        finally:
            # After the method has taken effect and before the answer leaves: a client that
            # dies while waiting has already changed the world, as on a real network.
            if self.latency_ms > 0:
                await asyncio.sleep(self.latency_ms / 1000)

    def _run(self, ctx: CallContext, request: TLRequest, name: str) -> TLObject:
        bot = self.world.authorized_bot(ctx.auth_key_id)
        fault = self.faults.take(name, bot.id if bot else None)
        if fault is not None:
            raise fault
        route = registry.routes.get(type(request))
        if route is not None and route.auth and bot is None:
            raise unauthorized()
        if route is None:
            raise RpcError(400, f"METHOD_NOT_IMPLEMENTED_{name}")
        if bot is not None and route.auth:
            # Logged in where it does not live (e.g. before migration was switched on):
            # every call is sent home, as Telegram does (core.telegram.org/api/datacenter).
            self.server.check_home(bot, ctx.dc_id)
        call = Call(
            world=self.world,
            limiter=self.limiter,
            floods=self.floods,
            behaviour=self.behaviour,
            server=self.server,
            metrics=self.metrics,
            ctx=ctx,
            bot=bot,
            rules=self.difference,
        )
        return route.handler(call, request)
