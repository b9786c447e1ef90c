"""PATCH /bots/{id} with a new token: the login runs without a lock on the bot row, and
the row is then written under its lock from a re-read: a bot deleted meanwhile stays
deleted, and of two concurrent PATCHes the later commit wins whole (its token with the
session its own login made)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from botmgr.bots import service as bots
from botmgr.bots.schemas import BotPatch
from botmgr.errors import Conflict
from botmgr.models import Bot, BotStatus
from botmgr.telegram.gateway import BotProfile
from tests.rules.conftest import World

pytestmark = pytest.mark.timeout(30)


class SlowLogins:
    """world.fake's login, held per token until released; each login makes a session
    of its own (named after its token), as Telegram's do."""

    def __init__(self, world: World) -> None:
        self.fake = world.fake
        self.original = world.fake.login
        self.gates: dict[str, asyncio.Event] = {}
        self.started: dict[str, asyncio.Event] = {}
        world.fake.login = self.login  # type: ignore[method-assign]

    def hold(self, token: str) -> asyncio.Event:
        self.started[token] = asyncio.Event()
        self.gates[token] = asyncio.Event()
        return self.gates[token]

    async def login(self, token: str) -> BotProfile:
        profile = await self.original(token)
        if token in self.gates:
            self.started[token].set()
            await self.gates[token].wait()
        return BotProfile(profile.tg_id, profile.username, "Fake", session=f"session of {token}")


async def patch(world: World, bot_id: int, **fields: Any) -> Bot | Exception:
    try:
        async with world.unit() as unit:
            return await bots.update_bot(
                unit.session, bot_id, BotPatch(**fields), gateway=world.fake, cipher=world.cipher
            )
    except Conflict as exc:
        return exc


async def lock_now(world: World, bot_id: int) -> bool:
    """Whether another transaction can lock the bot row right now (NOWAIT)."""
    async with world.sessionmaker() as session:
        stmt = select(Bot.id).where(Bot.id == bot_id).with_for_update(nowait=True)
        locked = (await session.execute(stmt)).scalar_one() == bot_id
        await session.rollback()
        return locked


async def test_no_row_lock_is_held_while_the_new_token_logs_in(world: World) -> None:
    bot, token = await world.bot()
    logins = SlowLogins(world)
    release = logins.hold(token)
    patching = asyncio.create_task(patch(world, bot.id, token=token, alias="renamed"))
    await asyncio.wait_for(logins.started[token].wait(), 5)
    assert await lock_now(world, bot.id)  # would raise LockNotAvailable under a lock
    release.set()
    assert isinstance(await patching, Bot)
    row = await world.get(Bot, bot.id)
    assert row.alias == "renamed" and row.status == BotStatus.active
    assert world.cipher.decrypt(row.session_encrypted or "") == f"session of {token}"


async def test_a_bot_deleted_during_the_login_stays_deleted(world: World) -> None:
    bot, token = await world.bot()
    logins = SlowLogins(world)
    release = logins.hold(token)
    patching = asyncio.create_task(patch(world, bot.id, token=token))
    await asyncio.wait_for(logins.started[token].wait(), 5)
    async with world.unit() as unit:
        await bots.delete(unit.session, bot.id)
    release.set()
    refused = await patching
    assert isinstance(refused, Conflict) and "deleted" in refused.message
    row = await world.get(Bot, bot.id)
    assert row.status == BotStatus.deleted and row.session_encrypted is None


async def test_of_two_concurrent_patches_the_later_commit_wins_whole(world: World) -> None:
    bot, token = await world.bot()
    other = f"{bot.tg_id}:{'B' * 30}"  # a second token of the same Telegram bot
    world.fake.bots[other] = world.fake.bots[token]
    logins = SlowLogins(world)
    release = logins.hold(token)
    slow = asyncio.create_task(patch(world, bot.id, token=token, description="slow"))
    await asyncio.wait_for(logins.started[token].wait(), 5)
    fast = await patch(world, bot.id, token=other, description="fast")  # commits first
    assert isinstance(fast, Bot)
    release.set()
    assert isinstance(await slow, Bot)
    row = await world.get(Bot, bot.id)
    stored = world.cipher.decrypt(row.token_encrypted)
    assert (stored, row.description) == (token, "slow")
    assert world.cipher.decrypt(row.session_encrypted or "") == f"session of {stored}"
