"""What the gateway remembers of a bot beyond one process (gateway.BotMemory), against
a real tgemu: channel access hashes (a restarted worker resolves no known channel; a
resolve flood does not stall sends to known channels; CHANNEL_INVALID re-resolves once)
and a login FLOOD_WAIT (waited out once, never hammered, across gateways). Also the
"original message" answer to a repeated random_id."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from botmgr.telegram.gateway import BotAccount, ChannelRef, FloodWait
from botmgr.telegram.telethon_gateway import TelethonGateway
from tests.integration.test_gateway import (
    MakeGateway,
    MemorySessionStore,
    make_gateway,
    new_bot,
    store,
)

__all__ = ["make_gateway", "store"]  # fixtures, used by name
pytestmark = pytest.mark.timeout(60)


class MemoryBotMemory(MemorySessionStore):
    """SessionStore + BotMemory in dicts: what bots/sessions.py keeps in PostgreSQL."""

    def __init__(self) -> None:
        super().__init__()
        self.hashes: dict[tuple[int, int], tuple[int, int]] = {}  # (bot, chan) → (tg bot, h)
        self.not_before: dict[int, datetime] = {}

    async def channel_hashes(self, bot_id: int, tg_bot_id: int) -> dict[int, int]:
        return {c: h for (b, c), (t, h) in self.hashes.items() if b == bot_id and t == tg_bot_id}

    async def save_channel_hash(
        self, bot_id: int, tg_bot_id: int, tg_channel_id: int, access_hash: int
    ) -> None:
        self.hashes[(bot_id, tg_channel_id)] = (tg_bot_id, access_hash)

    async def forget_channel_hash(self, bot_id: int, tg_channel_id: int) -> None:
        self.hashes.pop((bot_id, tg_channel_id), None)

    async def login_flood(self, bot_id: int, not_before: datetime) -> None:
        self.not_before[bot_id] = max(not_before, self.not_before.get(bot_id, not_before))


@pytest.fixture
def memory() -> MemoryBotMemory:
    return MemoryBotMemory()


@pytest.fixture(autouse=True)
def no_leftover_faults(tgemu: Any) -> Iterator[None]:
    yield
    tgemu.clear_faults()


def calls(tgemu: Any, method: str) -> int:
    return int(tgemu.metrics()["calls"].get(method, 0))


def process(make_gateway: MakeGateway, memory: MemoryBotMemory) -> TelethonGateway:
    """A gateway as a worker process builds it: the same stores, nothing in memory."""
    return make_gateway(session_store=memory, memory=memory)


async def test_a_restarted_worker_resolves_no_known_channel(
    tgemu: Any, make_gateway: MakeGateway, memory: MemoryBotMemory
) -> None:
    first = process(make_gateway, memory)
    bot, account = await new_bot(tgemu, first)
    channel = tgemu.create_channel("Known", tgemu.unique("known"))
    tgemu.grant_admin(channel["id"], bot["id"])
    ref = ChannelRef(tg_id=channel["id"], username=channel["username"])
    await first.resolve_channel(account, ref)
    await first.send_message(account, ref, "before", [], random_id=1)
    assert (account.bot_id, channel["id"]) in memory.hashes

    resolves = calls(tgemu, "contacts.resolveUsername")
    second = process(make_gateway, memory)  # the restart: a new process, same database
    assert (await second.get_rights(account, ref)).can_post
    await second.send_message(account, ref, "after", [], random_id=2)
    assert (await second.resolve_channel(account, ref)).tg_id == channel["id"]
    assert calls(tgemu, "contacts.resolveUsername") == resolves


async def test_a_resolve_flood_does_not_stall_sends_to_known_channels(
    tgemu: Any, make_gateway: MakeGateway, memory: MemoryBotMemory
) -> None:
    gateway = process(make_gateway, memory)
    bot, account = await new_bot(tgemu, gateway)
    known = tgemu.create_channel("Known", tgemu.unique("known"))
    tgemu.grant_admin(known["id"], bot["id"])
    known_ref = ChannelRef(tg_id=known["id"], username=known["username"])
    await gateway.resolve_channel(account, known_ref)
    other = tgemu.create_channel("New", tgemu.unique("new"))

    tgemu.add_fault("contacts.resolveUsername", "FLOOD_WAIT_3600", times=5)
    with pytest.raises(FloodWait) as flood:
        await gateway.resolve_channel(account, ChannelRef(username=other["username"]))
    assert flood.value.seconds == 3600
    assert await gateway.send_message(account, known_ref, "still", [], random_id=3) >= 1
    assert (await gateway.get_rights(account, known_ref)).can_post


async def test_a_refused_stored_hash_is_resolved_again_once(
    tgemu: Any, make_gateway: MakeGateway, memory: MemoryBotMemory
) -> None:
    gateway = process(make_gateway, memory)
    bot, account = await new_bot(tgemu, gateway)
    channel = tgemu.create_channel("Moved", tgemu.unique("moved"))
    tgemu.grant_admin(channel["id"], bot["id"])
    memory.hashes[(account.bot_id, channel["id"])] = (bot["id"], 12345)  # stale
    ref = ChannelRef(tg_id=channel["id"], username=channel["username"])
    resolves = calls(tgemu, "contacts.resolveUsername")
    assert await process(make_gateway, memory).send_message(account, ref, "hi", [], random_id=4)
    assert calls(tgemu, "contacts.resolveUsername") == resolves + 1
    assert memory.hashes[(account.bot_id, channel["id"])][1] != 12345


async def test_a_login_flood_is_waited_out_once_not_hammered(
    tgemu: Any, make_gateway: MakeGateway, memory: MemoryBotMemory
) -> None:
    # At home on the DC a new client reaches first: every import counted here is a login
    # attempt, not a USER_MIGRATE on the way (tests/integration/test_dcs.py has those).
    bot = tgemu.create_bot(dc_id=2)
    account = BotAccount(bot_id=bot["id"], token=bot["token"])  # no session: must log in
    channel = tgemu.create_channel("Flood", tgemu.unique("flood"))
    tgemu.grant_admin(channel["id"], bot["id"])
    ref = ChannelRef(tg_id=channel["id"])
    imports = calls(tgemu, "auth.importBotAuthorization")
    tgemu.add_fault("auth.importBotAuthorization", "FLOOD_WAIT_2")

    first = process(make_gateway, memory)
    for _ in range(3):  # the bot's tasks: each told to wait, none asks Telegram
        with pytest.raises(FloodWait) as flood:
            await first.get_rights(account, ref)
        assert 1 <= flood.value.seconds <= 2
    not_before = memory.not_before[bot["id"]]
    assert not_before > datetime.now(UTC)
    # Another process reads "no login before T" from the bot row.
    remembered = BotAccount(bot["id"], bot["token"], login_not_before=not_before)
    with pytest.raises(FloodWait):
        await process(make_gateway, memory).get_rights(remembered, ref)
    assert calls(tgemu, "auth.importBotAuthorization") == imports + 1

    await asyncio.sleep((not_before - datetime.now(UTC)).total_seconds() + 0.1)
    assert (await first.get_rights(account, ref)).can_post  # the retry after the wait
    assert calls(tgemu, "auth.importBotAuthorization") == imports + 2


async def test_a_repeated_random_id_may_be_answered_with_the_original(
    tgemu: Any, make_gateway: MakeGateway, memory: MemoryBotMemory
) -> None:
    gateway = process(make_gateway, memory)
    bot, account = await new_bot(tgemu, gateway)
    channel = tgemu.create_channel("Once", tgemu.unique("once"))
    tgemu.grant_admin(channel["id"], bot["id"])
    ref = ChannelRef(tg_id=channel["id"])
    first = await gateway.send_message(account, ref, "once", [], random_id=77)
    tgemu.config(random_id_duplicate="original")
    try:
        again = await gateway.send_message(account, ref, "once", [], random_id=77)
    finally:
        tgemu.config(random_id_duplicate="error")
    assert again == first
    assert [m["text"] for m in tgemu.messages(channel["id"])] == ["once"]
