"""auth.*: bot login by token, logout."""

from __future__ import annotations

from telethon.tl import functions, types

from tgemu.methods import render
from tgemu.methods.base import Call, method
from tgemu.rpc import RpcError


@method(functions.auth.ImportBotAuthorizationRequest, auth=False)
def import_bot_authorization(
    call: Call, request: functions.auth.ImportBotAuthorizationRequest
) -> types.auth.Authorization:
    if request.api_id <= 0 or not request.api_hash:
        raise RpcError(400, "API_ID_INVALID")
    bot = call.world.bot_by_token(request.bot_auth_token)
    if bot is None:
        raise RpcError(400, "ACCESS_TOKEN_INVALID")
    # A bot logs in on its home DC only (TDLib NetQueryDispatcher::try_fix_migrate,
    # Pyrogram's sign_in_bot loop: importBotAuthorization → 303 USER_MIGRATE_X).
    call.server.check_home(bot, call.ctx.dc_id)
    wait = call.floods.check_login(bot.id)  # per bot, as Telegram counts them
    if wait:
        raise RpcError(420, f"FLOOD_WAIT_{wait}")
    call.world.authorize(call.ctx.auth_key_id, bot)
    call.metrics.logins[bot.id] += 1
    return types.auth.Authorization(user=render.user(call.world, bot.id, bot))


@method(functions.auth.LogOutRequest)
def log_out(call: Call, request: functions.auth.LogOutRequest) -> types.auth.LoggedOut:
    call.world.deauthorize(call.ctx.auth_key_id)
    return types.auth.LoggedOut()
