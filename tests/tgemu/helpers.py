"""Calling the method dispatcher directly, as the MTProto layer does."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from telethon import TelegramClient
from telethon.tl.tlobject import TLObject, TLRequest

from tests.harness.tgemu import TgEmu
from tgemu.methods import MethodDispatcher
from tgemu.ratelimit import RateLimitConfig, RateLimiter
from tgemu.rpc import CallContext
from tgemu.world import World

_key_ids = itertools.count(1)


class Harness:
    def __init__(self, rate_limits: bool = False) -> None:
        self.world = World()
        self.dispatcher = MethodDispatcher(
            self.world, limiter=RateLimiter(RateLimitConfig(enabled=rate_limits))
        )

    def ctx(self) -> CallContext:
        return CallContext(auth_key_id=next(_key_ids), session_id=1, connection_id=1)

    async def call(self, ctx: CallContext, request: TLRequest) -> TLObject:
        return await self.dispatcher.invoke(ctx, request)


@asynccontextmanager
async def bot_client(tgemu: TgEmu, token: str) -> AsyncIterator[TelegramClient]:
    """A raw Telethon client of the emulator, signed in as the bot with ``token``."""
    client = tgemu.telethon_client()
    await client.connect()
    try:
        await tgemu.sign_in(client, token)
        yield client
    finally:
        await client.disconnect()


def new_bot(tgemu: TgEmu) -> dict:
    return tgemu.create_bot(tgemu.unique("b") + "_bot")
