"""The client pool's cap, LRU and idle eviction (telegram/pool.py), with fake clients in
place of Telethon: how many are connected, which one goes, who waits, and that a bot
whose client went reconnects with the session it had (no login). The same against
tgemu over MTProto: tests/integration/test_gateway_pool.py."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from telethon import types

from botmgr.telegram.clients import ClientSettings, PooledClient
from botmgr.telegram.gateway import BotAccount
from botmgr.telegram.pool import ClientPool

pytestmark = pytest.mark.timeout(10)


class FakeSession:
    def __init__(self, key: str) -> None:
        self.key = key

    def save(self) -> str:
        return self.key


class FakeClient:
    """What the pool touches of a TelegramClient."""

    def __init__(self, key: str) -> None:
        self.session = FakeSession(key)
        self.connected = True
        self.disconnected: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def is_connected(self) -> bool:
        return self.connected

    async def disconnect(self) -> None:
        self.connected = False
        if not self.disconnected.done():
            self.disconnected.set_result(None)


class FakeStore:
    async def save(self, bot_id: int, session: str) -> None:
        return None


class FakePool(ClientPool):
    """Connects fake clients: with a session it resumes, without one it "logs in"."""

    def __init__(self, **options: object) -> None:
        super().__init__(ClientSettings(1, "hash"), FakeStore(), **options)  # type: ignore[arg-type]
        self.connects: list[tuple[int, str | None]] = []  # (bot, session it resumed)
        self.clients: list[FakeClient] = []
        self._keys = itertools.count(1)

    async def _connect(self, bot: BotAccount, digest: str, session: str | None) -> PooledClient:
        self.connects.append((bot.bot_id, session))
        if session is None:
            self.logins += 1
        await asyncio.sleep(0)  # a connect is a round trip: other calls run meanwhile
        client = FakeClient(session or f"key-{bot.bot_id}-{next(self._keys)}")
        self.clients.append(client)
        me = types.User(id=bot.bot_id, bot=True)
        return PooledClient(client=client, token=digest, me=me)  # type: ignore[arg-type]

    def connected(self) -> int:
        return sum(c.connected for c in self.clients)


def account(bot_id: int, session: str | None = None) -> BotAccount:
    return BotAccount(bot_id=bot_id, token=f"{bot_id}:{'A' * 30}", session=session)


async def use(pool: FakePool, bot: BotAccount, hold: float = 0.0) -> PooledClient:
    async with pool.lease(bot) as lease:
        pooled = await lease.client()
        await asyncio.sleep(hold)
        return pooled


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_at_the_cap_the_least_recently_used_idle_client_goes() -> None:
    pool = FakePool(max_clients=2)
    a, b, c = account(1, "sa"), account(2, "sb"), account(3, "sc")
    first_a = await use(pool, a)
    await use(pool, b)
    await use(pool, a)  # a is now more recent than b
    await use(pool, c)
    assert pool.size == 2 and pool.connected() == 2 and pool.evictions == 1
    assert first_a.client.is_connected()  # a kept its client: b was the older
    assert [bot for bot, _ in pool.connects] == [1, 2, 3]
    await pool.close()
    assert pool.connected() == 0


async def test_an_evicted_bot_reconnects_with_its_session_and_no_login() -> None:
    pool = FakePool(max_clients=1)
    # The caller's account carries no session (as a sweep's accounts read before the
    # first login): the one login's session is what the reconnect uses.
    stale = account(1, session=None)
    await use(pool, stale)
    await use(pool, account(2, "sb"))  # evicts bot 1
    await use(pool, stale)
    assert pool.logins == 1
    assert pool.connects[-1] == (1, "key-1-1")  # its first client's session, resumed
    await pool.close()


async def test_a_client_in_use_is_never_evicted_the_newcomer_waits() -> None:
    pool = FakePool(max_clients=1)
    release = asyncio.Event()

    async def hold_a() -> PooledClient:
        async with pool.lease(account(1, "sa")) as lease:
            pooled = await lease.client()
            await release.wait()
            return pooled

    holder = asyncio.create_task(hold_a())
    await asyncio.sleep(0.01)
    newcomer = asyncio.create_task(use(pool, account(2, "sb")))
    await asyncio.sleep(0.05)
    assert not newcomer.done() and pool.connected() == 1 and pool.evictions == 0
    release.set()
    held = await holder
    assert (await newcomer).client.is_connected()
    assert not held.client.is_connected() and pool.connected() == 1
    await pool.close()


async def test_calls_of_one_bot_share_its_slot() -> None:
    pool = FakePool(max_clients=1)
    clients = await asyncio.gather(*(use(pool, account(1, "sa"), hold=0.01) for _ in range(5)))
    assert len({id(p.client) for p in clients}) == 1 and pool.connects == [(1, "sa")]
    await pool.close()


async def test_a_sweep_over_more_bots_than_the_cap_streams_through_it() -> None:
    pool = FakePool(max_clients=5)
    peak = 0

    async def call(bot_id: int) -> None:
        nonlocal peak
        await use(pool, account(bot_id, f"s{bot_id}"), hold=0.002)
        peak = max(peak, pool.connected())

    # 4 calls per bot at once, 60 bots: twelve times the cap, all waiting together.
    await asyncio.wait_for(asyncio.gather(*(call(b) for b in range(60) for _ in range(4))), 5)
    assert peak <= 5 and pool.peak == 5 and pool.logins == 0
    assert {bot for bot, _ in pool.connects} == set(range(60))
    await pool.close()


async def test_a_waiter_that_gives_up_hands_its_turn_on() -> None:
    pool = FakePool(max_clients=1)
    release = asyncio.Event()

    async def hold() -> None:
        async with pool.lease(account(1, "sa")) as lease:
            await lease.client()
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0.01)
    impatient = asyncio.create_task(use(pool, account(2, "sb")))
    patient = asyncio.create_task(use(pool, account(3, "sc")))
    await asyncio.sleep(0.01)
    release.set()
    impatient.cancel()  # its call's deadline, say, as the slot is handed to it
    await holder
    assert (await asyncio.wait_for(patient, 2)).client.is_connected()
    assert impatient.cancelled()
    await pool.close()


async def test_idle_clients_are_disconnected_and_come_back_without_a_login() -> None:
    clock = Clock()
    pool = FakePool(max_clients=10, idle_seconds=300, clock=clock)
    first = await use(pool, account(1, "sa"))
    await use(pool, account(2, "sb"))
    clock.now += 200
    await use(pool, account(2, "sb"))  # bot 2 stays busy, bot 1 does not
    clock.now += 101
    assert await pool.evict_idle() == 1
    assert not first.client.is_connected() and pool.size == 1
    again = await use(pool, account(1, "sa"))
    assert again.client.is_connected() and pool.logins == 0
    await pool.close()


async def test_the_reaper_disconnects_idle_clients_by_itself() -> None:
    pool = FakePool(idle_seconds=0.05)
    pooled = await use(pool, account(1, "sa"))
    for _ in range(100):
        if not pooled.client.is_connected():
            break
        await asyncio.sleep(0.02)
    assert not pooled.client.is_connected() and pool.size == 0
    await pool.close()
