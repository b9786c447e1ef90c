"""Auth-key creation, bot login and saved-session reconnects with the real Telethon."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from telethon.crypto import AuthKey, Factorization
from telethon.errors import AuthKeyNotFound
from telethon.network.connection import ConnectionTcpAbridged, ConnectionTcpIntermediate
from telethon.sessions import StringSession

from tests.tgemu.conftest import BOT_ID, MakeClient, NetDispatcher
from tgemu.server import KeyStore, MTProtoServer


async def _login(make: MakeClient, **kwargs: object) -> str:
    client = make(**kwargs)
    await asyncio.wait_for(client.start(bot_token="1:x"), 20)
    me = await asyncio.wait_for(client.get_me(), 5)
    assert me.id == BOT_ID and me.bot
    saved = StringSession.save(client.session)
    await client.disconnect()
    return saved


async def test_fresh_key_login_then_saved_session_reconnect(
    net_client: MakeClient, net_dispatcher: NetDispatcher, net_keys: KeyStore
) -> None:
    saved = await _login(net_client)
    assert net_dispatcher.calls["ImportBotAuthorizationRequest"] == 1
    assert len(net_keys) == 1
    first_key_id = net_dispatcher.contexts[-1].auth_key_id

    timings = []
    for _ in range(3):
        started = time.perf_counter()
        client = net_client(saved)
        await asyncio.wait_for(client.connect(), 5)
        me = await asyncio.wait_for(client.get_me(), 5)
        timings.append(time.perf_counter() - started)
        assert me.id == BOT_ID
        await client.disconnect()

    assert net_dispatcher.calls["ImportBotAuthorizationRequest"] == 1
    assert net_dispatcher.contexts[-1].auth_key_id == first_key_id
    assert len(net_keys) == 1
    print(f"saved-session reconnect + get_me: {[round(t * 1000, 1) for t in timings]} ms")
    assert min(timings) < 0.1


async def test_start_with_saved_session_does_not_log_in_again(
    net_client: MakeClient, net_dispatcher: NetDispatcher
) -> None:
    saved = await _login(net_client)
    client = net_client(saved)
    await asyncio.wait_for(client.start(bot_token="1:x"), 10)
    assert (await client.get_me()).id == BOT_ID
    assert net_dispatcher.calls["ImportBotAuthorizationRequest"] == 1


async def test_login_over_intermediate_and_abridged(
    net_client: MakeClient, net_dispatcher: NetDispatcher
) -> None:
    for connection in (ConnectionTcpIntermediate, ConnectionTcpAbridged):
        saved = await _login(net_client, connection=connection)
        client = net_client(saved, connection=connection)
        await asyncio.wait_for(client.connect(), 5)
        assert (await asyncio.wait_for(client.get_me(), 5)).id == BOT_ID
    assert net_dispatcher.calls["ImportBotAuthorizationRequest"] == 2


async def test_short_key_keeps_its_id_after_string_session_padding(
    net_client: MakeClient, net_dispatcher: NetDispatcher, net_keys: KeyStore
) -> None:
    # A 255-byte key, as DH yields about once in 256 handshakes.
    key = b"\x01" + os.urandom(254)
    canonical = net_keys.add(key).key_id
    session = StringSession()
    session.auth_key = AuthKey(key)
    saved = await _login(net_client, session=session)
    assert net_dispatcher.contexts[-1].auth_key_id == canonical

    # The saved string holds the key zero-padded to 256 bytes: another id on the wire.
    reloaded = StringSession(saved)
    assert len(reloaded.auth_key.key) == 256 and reloaded.auth_key.key_id != canonical
    client = net_client(reloaded)
    await asyncio.wait_for(client.connect(), 5)
    assert (await asyncio.wait_for(client.get_me(), 5)).id == BOT_ID
    assert net_dispatcher.contexts[-1].auth_key_id == canonical
    assert net_dispatcher.calls["ImportBotAuthorizationRequest"] == 1


async def test_unknown_auth_key_is_refused_with_404(
    net_client: MakeClient, net_server: MTProtoServer
) -> None:
    session = StringSession()
    session.auth_key = AuthKey(os.urandom(256))
    client = net_client(session)
    # Telethon treats -404 as "key forgotten": it disconnects instead of hanging.
    with pytest.raises(AuthKeyNotFound):
        await asyncio.wait_for(client.connect(), 5)
    assert not client.is_connected()


async def test_drop_connections_then_telethon_reconnects(
    net_client: MakeClient, net_server: MTProtoServer, net_dispatcher: NetDispatcher
) -> None:
    saved = await _login(net_client)
    client = net_client(saved)
    await asyncio.wait_for(client.connect(), 5)
    await asyncio.wait_for(client.get_me(), 5)
    first_connection = net_dispatcher.contexts[-1].connection_id
    assert net_server.connections == 1

    assert net_server.drop_connections() == 1
    me = await asyncio.wait_for(client.get_me(), 10)
    assert me.id == BOT_ID
    assert net_dispatcher.contexts[-1].connection_id != first_connection
    assert net_server.connections == 1


async def test_login_when_telethon_factorises_pq_as_one_times_pq(
    net_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Telethon's Pollard-Brent sometimes gives up and returns (1, pq): about once in
    # 1,500 handshakes with our pq sizes. The server must still create the key.
    monkeypatch.setattr(Factorization, "factorize", classmethod(lambda cls, pq: (1, pq)))
    await _login(net_client)
