"""Service messages and RPC semantics of the MTProto layer, seen from a real Telethon."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import struct

import pytest
from telethon import TelegramClient, events
from telethon.errors import BadRequestError, ServerError
from telethon.tl import functions, types
from telethon.tl.tlobject import TLRequest

from tests.tgemu.conftest import BOT_ID, MakeClient, NetDispatcher
from tgemu.server import MTProtoServer


class _FutureRequest(TLRequest):
    """A method from a layer newer than the server's: a constructor it cannot parse."""

    CONSTRUCTOR_ID = 0x0BADC0DE
    SUBCLASS_OF_ID = 0x3FEDD339

    def _bytes(self) -> bytes:
        return struct.pack("<Ii", self.CONSTRUCTOR_ID, 7)


async def _bot(make: MakeClient, **kwargs: object) -> TelegramClient:
    client = make(**kwargs)
    await asyncio.wait_for(client.start(bot_token="1:x"), 20)
    return client


async def test_ping_and_ping_delay_disconnect(
    net_client: MakeClient, net_dispatcher: NetDispatcher
) -> None:
    client = await _bot(net_client)
    pong = await asyncio.wait_for(client(functions.PingRequest(ping_id=4242)), 5)
    assert isinstance(pong, types.Pong) and pong.ping_id == 4242

    pong = await asyncio.wait_for(
        client(functions.PingDelayDisconnectRequest(ping_id=7, disconnect_delay=1)), 5
    )
    assert pong.ping_id == 7
    await asyncio.wait_for(client.get_me(), 5)
    before = net_dispatcher.contexts[-1].connection_id
    # Silent for longer than the delay the client asked for: the server hangs up, and
    # Telethon reconnects on its own.
    await asyncio.sleep(1.5)
    assert (await asyncio.wait_for(client.get_me(), 10)).id == BOT_ID
    assert net_dispatcher.contexts[-1].connection_id != before


async def test_gzip_both_ways(net_client: MakeClient, net_dispatcher: NetDispatcher) -> None:
    client = await _bot(net_client)
    big = "y" * 300_000  # Telethon sends this request gzip_packed
    event = types.InputAppEvent(time=1.0, type="t", peer=0, data=types.JsonString(big))
    assert await asyncio.wait_for(client(functions.help.SaveAppLogRequest([event])), 10)
    assert net_dispatcher.app_log_sizes == [len(big)]

    # A ~4 KB answer goes back gzip_packed inside rpc_result.
    users = await asyncio.wait_for(
        client(functions.users.GetUsersRequest([types.InputUser(BOT_ID, 1)])), 5
    )
    assert users[0].first_name == "x" * 4000


async def test_unknown_constructor_and_unimplemented_method_answer_errors(
    net_client: MakeClient,
) -> None:
    client = await _bot(net_client)
    with pytest.raises(BadRequestError) as exc:
        await asyncio.wait_for(client(_FutureRequest()), 5)
    assert exc.value.code == 400 and exc.value.message == "METHOD_NOT_IMPLEMENTED_0BADC0DE"

    with pytest.raises(BadRequestError) as exc:
        await asyncio.wait_for(client(functions.help.GetCountriesListRequest("en", 0)), 5)
    assert "GETCOUNTRIESLISTREQUEST" in exc.value.message
    # The connection survived both.
    assert (await asyncio.wait_for(client.get_me(), 5)).id == BOT_ID


async def test_dispatcher_crash_is_a_500_not_a_hang(net_client: MakeClient) -> None:
    client = await _bot(net_client, raise_last_call_error=True)
    with pytest.raises(ServerError) as exc:
        await asyncio.wait_for(client(functions.help.GetAppConfigRequest(hash=0)), 10)
    assert exc.value.code == 500 and exc.value.message == "INTERNAL"
    assert (await asyncio.wait_for(client.get_me(), 5)).id == BOT_ID


async def test_slow_call_stalls_nothing_and_ordered_calls_wait(
    net_client: MakeClient, net_dispatcher: NetDispatcher
) -> None:
    client = await _bot(net_client)
    other = await _bot(net_client)
    slow = asyncio.create_task(client(functions.help.GetNearestDcRequest()))
    await asyncio.sleep(0.05)
    # Same connection and another connection both go on while the slow call hangs.
    assert (await asyncio.wait_for(client.get_me(), 5)).id == BOT_ID
    assert (await asyncio.wait_for(other.get_me(), 5)).id == BOT_ID

    # ordered=True wraps the second request in invokeAfterMsg(first).
    users_before = net_dispatcher.calls["GetUsersRequest"]
    ordered = asyncio.create_task(
        client(
            [
                functions.help.GetNearestDcRequest(),
                functions.users.GetUsersRequest([types.InputUserSelf()]),
            ],
            ordered=True,
        )
    )
    await asyncio.sleep(0.2)
    assert net_dispatcher.calls["GetUsersRequest"] == users_before
    assert not slow.done() and not ordered.done()

    net_dispatcher.slow.set()
    assert (await asyncio.wait_for(slow, 5)).country == "ZZ"
    nearest, users = await asyncio.wait_for(ordered, 5)
    assert nearest.this_dc == 2 and users[0].id == BOT_ID


async def test_many_requests_at_once_travel_in_containers(
    net_client: MakeClient, net_server: MTProtoServer
) -> None:
    client = await _bot(net_client)
    results = await asyncio.wait_for(asyncio.gather(*(client.get_me() for _ in range(50))), 10)
    assert {me.id for me in results} == {BOT_ID}
    # Many requests and answers, one connection.
    assert net_server.connections == 1


async def test_future_salts_and_destroy_session(net_client: MakeClient) -> None:
    client = await _bot(net_client)
    salts = await asyncio.wait_for(client(functions.GetFutureSaltsRequest(num=1)), 5)
    assert isinstance(salts, types.FutureSalts) and len(salts.salts) == 1
    other_session = struct.unpack("<q", os.urandom(8))[0]
    gone = await asyncio.wait_for(client(functions.DestroySessionRequest(other_session)), 5)
    assert isinstance(gone, types.DestroySessionNone)


async def test_server_push_reaches_a_client_receiving_updates(
    net_client: MakeClient, net_server: MTProtoServer, net_dispatcher: NetDispatcher
) -> None:
    client = await _bot(net_client, receive_updates=True)
    seen: asyncio.Queue[object] = asyncio.Queue()
    client.add_event_handler(seen.put, events.Raw(types.UpdateConfig))
    key_id = net_dispatcher.contexts[-1].auth_key_id
    update = types.UpdateShort(update=types.UpdateConfig(), date=dt.datetime.now(dt.UTC))
    assert net_server.push(key_id, update) == 1
    assert isinstance(await asyncio.wait_for(seen.get(), 5), types.UpdateConfig)


async def test_client_clock_far_off_is_corrected_with_bad_msg_notification(
    net_client: MakeClient,
) -> None:
    client = await _bot(net_client)
    for skew in (1000, -1000):
        # As if the machine's clock were that far off (msg_ids restart from it).
        client._sender._state.time_offset = skew
        client._sender._state._last_msg_id = 0
        assert (await asyncio.wait_for(client.get_me(), 5)).id == BOT_ID
        assert abs(client._sender._state.time_offset) <= 1
