"""The client pool's cap and idle eviction against tgemu over MTProto: an evicted bot
reconnects with its kept session, so Telegram sees no second login
(auth.importBotAuthorization, counted by tgemu per bot), and the evicted client's
connection is really closed. The pool's rules with fake clients: tests/unit/
test_client_pool.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from botmgr.telegram.gateway import BotAccount
from tests.integration.test_gateway import (
    MakeGateway,
    MemorySessionStore,
    admin_channel,
    logins,
    make_gateway,
    new_bot,
    store,
)

__all__ = ["make_gateway", "store"]  # fixtures, used by name

pytestmark = pytest.mark.timeout(60)


async def quiet_connections(tgemu: Any) -> int:
    """tgemu's live connections once the throw-away clients of a login are gone."""
    await asyncio.sleep(0.3)
    return int(tgemu.metrics()["connections"])


async def connections_settle(tgemu: Any, expected: int) -> int:
    """tgemu's live connections once they reach ``expected`` (a closed socket is seen
    by the server a moment later), or what they are after 3 s."""
    for _ in range(60):
        now = int(tgemu.metrics()["connections"])
        if now == expected:
            return now
        await asyncio.sleep(0.05)
    return int(tgemu.metrics()["connections"])


async def test_an_evicted_bot_reconnects_without_a_new_login(
    tgemu: Any, make_gateway: MakeGateway, store: MemorySessionStore
) -> None:
    gateway = make_gateway(max_clients=1)
    first, logged_in = await new_bot(tgemu, gateway)  # login() as the API does: 1 login
    _, first_ref = await admin_channel(tgemu, first)
    # A bot registered without a session: the pool logs it in once, on its first call.
    second = tgemu.create_bot()
    _, second_ref = await admin_channel(tgemu, second)
    session_less = BotAccount(bot_id=second["id"], token=second["token"])
    baseline = await quiet_connections(tgemu)

    assert (await gateway.get_rights(logged_in, first_ref)).can_post
    assert await connections_settle(tgemu, baseline + 1) == baseline + 1
    assert (await gateway.get_rights(session_less, second_ref)).can_post  # evicts the first
    assert gateway.pool.size == 1 and gateway.pool.evictions == 1
    assert await connections_settle(tgemu, baseline + 1) == baseline + 1  # never two
    assert (await gateway.get_rights(logged_in, first_ref)).can_post  # evicts the second
    # The caller's account still has no session: the one the pool's login made is used.
    assert (await gateway.get_rights(session_less, second_ref)).can_post
    assert gateway.pool.evictions == 3
    assert (logins(tgemu, first["id"]), logins(tgemu, second["id"])) == (1, 1)
    assert store.saves == 1  # the second bot's login, stored once


async def test_an_idle_client_is_disconnected_and_resumes_without_a_login(
    tgemu: Any, make_gateway: MakeGateway
) -> None:
    gateway = make_gateway(client_idle_seconds=0.2)
    bot, account = await new_bot(tgemu, gateway)
    channel, ref = await admin_channel(tgemu, bot)
    baseline = await quiet_connections(tgemu)
    await gateway.send_message(account, ref, "before the pause", [], random_id=1)
    for _ in range(60):
        if gateway.pool.size == 0:
            break
        await asyncio.sleep(0.05)
    assert gateway.pool.size == 0
    assert await connections_settle(tgemu, baseline) == baseline
    await gateway.send_message(account, ref, "after the pause", [], random_id=2)
    assert [m["text"] for m in tgemu.messages(channel["id"])] == [
        "before the pause",
        "after the pause",
    ]
    assert logins(tgemu, bot["id"]) == 1
