"""TelethonGateway when the network misbehaves: an in-process tgemu (the real MTProto
server and world, started here so the test can cut its connections and make it forget
its auth keys, which the control API cannot)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from telethon.sessions import StringSession

from botmgr.telegram.gateway import BotAccount, ChannelRef
from botmgr.telegram.telethon_gateway import TelethonGateway
from tests.integration.test_gateway import MemorySessionStore
from tgemu.methods.dispatcher import MethodDispatcher
from tgemu.server import KeyStore, MTProtoServer, load_or_create_rsa_key, start_server
from tgemu.world.world import World

pytestmark = pytest.mark.timeout(60)


@dataclass
class LocalEmu:
    world: World
    dispatcher: MethodDispatcher
    keys: KeyStore
    server: MTProtoServer
    pem: str

    def gateway(self, store: MemorySessionStore) -> TelethonGateway:
        return TelethonGateway(
            api_id=1,
            api_hash="tgemu",
            server=("127.0.0.1", self.server.port),
            public_key_pem=self.pem,
            session_store=store,
            call_timeout=10,
        )


@pytest.fixture
async def emu(tmp_path: Path) -> AsyncIterator[LocalEmu]:
    public = tmp_path / "public.pem"
    key = load_or_create_rsa_key(None, str(public))
    world = World()
    dispatcher = MethodDispatcher(world)
    keys = KeyStore()
    server = await start_server("127.0.0.1", 0, dispatcher=dispatcher, rsa_key=key, keys=keys)
    try:
        yield LocalEmu(world, dispatcher, keys, server, public.read_text())
    finally:
        await server.close()


async def test_cut_connections_are_reopened_without_login(emu: LocalEmu) -> None:
    bot = emu.world.create_bot("netcut_bot")
    channel = emu.world.create_channel("Cut", username="cut_channel")
    emu.world.set_admin(channel.id, bot.id, {"post_messages": True})
    store = MemorySessionStore()
    gateway = emu.gateway(store)
    try:
        account = BotAccount(bot_id=bot.id, token=bot.token)
        ref = ChannelRef(username="cut_channel")
        assert (await gateway.get_rights(account, ref)).can_post
        assert emu.server.drop_connections() >= 1
        first = await gateway.send_message(account, ref, "after the cut", [], random_id=1)
        assert channel.messages[first].text == "after the cut"
        assert emu.dispatcher.metrics.logins[bot.id] == 1
    finally:
        await gateway.close()


async def test_server_that_forgot_the_key_gets_one_new_login(emu: LocalEmu) -> None:
    bot = emu.world.create_bot("forgetful_bot")
    channel = emu.world.create_channel("Forget", username="forget_channel")
    store = MemorySessionStore()
    api, worker = emu.gateway(store), emu.gateway(store)
    try:
        profile = await api.login(bot.token)
        key = StringSession(profile.session).auth_key
        assert key is not None and emu.keys.remove(key.key_id)
        account = BotAccount(bot_id=bot.id, token=bot.token, session=profile.session)
        assert await worker.subscribers(account, ChannelRef(username=channel.username)) == 1
        assert emu.dispatcher.metrics.logins[bot.id] == 2
        assert store.saved[bot.id] != profile.session
    finally:
        await api.close()
        await worker.close()
