"""Many concurrent Telethon clients against one server."""

from __future__ import annotations

import asyncio
import os
import time

from telethon.crypto import AuthKey
from telethon.sessions import StringSession
from telethon.tl import functions, types

from tests.tgemu.conftest import BOT_ID, MakeClient, NetDispatcher
from tgemu.server import KeyStore, MTProtoServer


async def test_200_concurrent_bot_connections(
    net_client: MakeClient,
    net_server: MTProtoServer,
    net_dispatcher: NetDispatcher,
    net_keys: KeyStore,
) -> None:
    # Keys made up front (as if from earlier logins): this measures serving 200 sessions
    # at once, not 200 handshakes on a 2-core box (the next test covers those).
    clients = []
    for _ in range(200):
        key = os.urandom(256)
        net_dispatcher.authorized.add(net_keys.add(key).key_id)
        session = StringSession()
        session.auth_key = AuthKey(key)
        clients.append(net_client(session))
    peak = 0

    async def work(index: int) -> float:
        nonlocal peak
        client = clients[index]
        started = time.perf_counter()
        await client.connect()
        assert (await client.get_me()).id == BOT_ID
        event = types.InputAppEvent(1.0, "t", 0, types.JsonString(f"bot {index} " * 100))
        assert await client(functions.help.SaveAppLogRequest([event]))
        peak = max(peak, net_server.connections)
        return time.perf_counter() - started

    started = time.perf_counter()
    latencies = await asyncio.wait_for(asyncio.gather(*(work(i) for i in range(200))), 60)
    total = time.perf_counter() - started
    print(
        f"200 clients: {total:.2f} s total, slowest {max(latencies) * 1000:.0f} ms, "
        f"peak {peak} connections"
    )
    assert len(net_dispatcher.app_log_sizes) == 200
    assert peak >= 150
    assert net_server.connections == 200


async def test_20_concurrent_fresh_logins(
    net_client: MakeClient, net_dispatcher: NetDispatcher, net_keys: KeyStore
) -> None:
    clients = [net_client() for _ in range(20)]
    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(c.start(bot_token="1:x") for c in clients)), 60)
    print(f"20 fresh handshakes + logins: {time.perf_counter() - started:.2f} s")
    assert len(net_keys) == 20
    assert net_dispatcher.calls["ImportBotAuthorizationRequest"] == 20
