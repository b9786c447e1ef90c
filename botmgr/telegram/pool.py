"""The process's connected Telethon clients: one per bot in use, at most ``max_clients``.

Logging in is what Telegram rate-limits hardest (repeated auth.importBotAuthorization
earns FLOOD_WAITs of 1,000+ s), so a client is made from the bot's stored StringSession
and kept connected while it is used. The token is used only when there is no session or
the stored one is dead, and then exactly once per attempt: a token Telegram refuses is
remembered and refused locally afterwards, so a revoked bot cannot cause a login loop.

Why a cap: one client per bot forever means 10,000 sockets for 10,000 bots (containers
often allow 1,024 file descriptors) and gigabytes of Telethon state. So:
- A call leases its bot's slot (``lease``) for as long as it runs; the calls of one bot
  share the slot and its client. A slot in use is never taken away.
- A bot that needs a slot while all ``max_clients`` are taken takes the least recently
  used idle one (its client is disconnected); with none idle it waits for a release,
  bots in order of arrival. Nothing deadlocks: a lease lasts one call, and a call never
  asks for a second slot, so every holder finishes and hands its slot on.
- A client unused for ``idle_seconds`` is disconnected by a reaper task.
- The session of every client made is kept in memory (auth key and DC, a few hundred
  bytes): Telegram keeps a key's authorization whatever happens to its socket, so a
  bot whose client was evicted reconnects with one connect and no login, even when the
  caller's ``BotAccount`` still holds an older session (or none).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from telethon import TelegramClient, errors, types

from botmgr.telegram.clients import (
    ClientSettings,
    PooledClient,
    disconnect_quietly,
    open_client,
    sign_in,
    token_digest,
    who_am_i,
)
from botmgr.telegram.errors import SESSION_DEAD, to_domain
from botmgr.telegram.gateway import BotAccount, FloodWait, SessionStore, TokenInvalid
from botmgr.telegram.logins import LoginFloods

log = logging.getLogger(__name__)


def _token_matches(token: str, user_id: int) -> bool:
    # A bot token starts with the bot's user id; only the server can check the rest.
    prefix = token.partition(":")[0]
    return not prefix.isdigit() or int(prefix) == user_id


@dataclass(slots=True, eq=False)
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one connect at a time
    pooled: PooledClient | None = None
    users: int = 0  # calls holding the slot now
    idle_since: float = 0.0


class Lease:
    """A bot's slot, held for one call (``ClientPool.lease``)."""

    def __init__(self, pool: ClientPool, bot: BotAccount, slot: _Slot) -> None:
        self._pool, self._bot, self._slot = pool, bot, slot

    async def client(self, *, dead: PooledClient | None = None) -> PooledClient:
        """The connected, authorized client. ``dead``: this client's session was just
        refused; replace it by a token login (unless a concurrent call already did —
        one login, not one per waiting call)."""
        return await self._pool._client(self._bot, self._slot, dead)


class ClientPool:
    def __init__(
        self,
        settings: ClientSettings,
        store: SessionStore,
        floods: LoginFloods | None = None,
        *,
        max_clients: int = 200,
        idle_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._store = store
        self.floods = floods or LoginFloods(None)
        self.max_clients = max_clients
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._slots: OrderedDict[int, _Slot] = OrderedDict()  # least recently used first
        self._waiting: dict[int, list[asyncio.Future[None]]] = {}  # bots in arrival order
        self._sessions: dict[int, tuple[str, str]] = {}  # bot → (token digest, session)
        self._refused_tokens: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reaper: asyncio.Task[None] | None = None
        # Observability (tests, bench/sweep.py): token logins, evictions, most slots held.
        self.logins = 0
        self.evictions = 0
        self.peak = 0

    @property
    def size(self) -> int:
        """Slots taken: clients connected, connecting or in use."""
        return len(self._slots)

    def _on_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # Telethon clients and asyncio locks belong to the loop they were made on;
            # a pool used from a new loop (e.g. a test harness, a forked worker) must
            # not touch them, so it starts empty there (the sessions stay: plain data).
            if self._loop is not None:
                log.warning("client pool moved to a new event loop; reconnecting bots")
                self._stop_reaper()
            self._loop, self._slots, self._waiting = loop, OrderedDict(), {}
        if self._reaper is None or self._reaper.done():
            self._reaper = loop.create_task(self._reap(loop), name="botmgr-client-reaper")

    # ------------------------------------------------------------- slots
    @asynccontextmanager
    async def lease(self, bot: BotAccount) -> AsyncIterator[Lease]:
        """Hold ``bot``'s slot while the block runs (waiting for one at the cap)."""
        slot = await self._take(bot.bot_id)
        try:
            yield Lease(self, bot, slot)
        finally:
            self._release(bot.bot_id, slot)

    async def _take(self, bot_id: int) -> _Slot:
        self._on_loop()
        while True:
            slot = self._slots.get(bot_id)
            if slot is not None:
                slot.users += 1
                self._slots.move_to_end(bot_id)
                return slot
            closing: PooledClient | None = None
            if len(self._slots) >= self.max_clients:
                victim = next((b for b, s in self._slots.items() if not s.users), None)
                if victim is None:
                    await self._wait(bot_id)
                    continue
                closing = self._evict(victim)
            # The place is ours before the victim's socket is closed: never over the cap.
            slot = self._slots[bot_id] = _Slot(users=1)
            self.peak = max(self.peak, len(self._slots))
            self._wake(self._waiting.pop(bot_id, []))  # the bot's other calls share it
            if closing is not None:
                try:
                    await disconnect_quietly(closing.client)
                except BaseException:
                    self._release(bot_id, slot)
                    raise
            return slot

    async def _wait(self, bot_id: int) -> None:
        assert self._loop is not None
        woken = self._loop.create_future()
        self._waiting.setdefault(bot_id, []).append(woken)
        try:
            await woken
        except BaseException:
            waiters = self._waiting.get(bot_id, [])
            if woken in waiters:
                waiters.remove(woken)
                if not waiters:
                    del self._waiting[bot_id]
            if woken.done() and not woken.cancelled():
                self._wake_next()  # a place was handed to this call: hand it on
            raise

    @staticmethod
    def _wake(futures: list[asyncio.Future[None]]) -> bool:
        """Wake these waiters; False if none was still waiting (all cancelled)."""
        woken = False
        for future in futures:
            if not future.done():
                future.set_result(None)
                woken = True
        return woken

    def _wake_next(self, bots: int = 1) -> None:
        """Wake the calls of the next ``bots`` bots that still wait."""
        while bots > 0 and self._waiting:
            # A cancelled call's future is cancelled before the call itself runs again:
            # skip such bots, or the place would be handed to nobody.
            if self._wake(self._waiting.pop(next(iter(self._waiting)))):
                bots -= 1

    def _release(self, bot_id: int, slot: _Slot) -> None:
        slot.users -= 1
        if slot.users or self._slots.get(bot_id) is not slot:
            return
        slot.idle_since = self._clock()
        if slot.pooled is None:  # its connect failed, or it was dropped: nothing to keep
            del self._slots[bot_id]
        else:
            self._slots.move_to_end(bot_id)
        self._wake_next()

    def _evict(self, bot_id: int) -> PooledClient | None:
        """Take an idle slot away; the caller disconnects the client it answers."""
        slot = self._slots.pop(bot_id)
        if slot.pooled is not None:
            self.evictions += 1
        return slot.pooled

    async def evict_idle(self) -> int:
        """Disconnect every client unused for ``idle_seconds``; how many went."""
        now = self._clock()
        stale = [
            bot_id
            for bot_id, slot in self._slots.items()
            if not slot.users and now - slot.idle_since >= self.idle_seconds
        ]
        closing = [pooled for pooled in map(self._evict, stale) if pooled is not None]
        self._wake_next(len(stale))
        await asyncio.gather(*(disconnect_quietly(p.client) for p in closing))
        return len(stale)

    async def _reap(self, loop: asyncio.AbstractEventLoop) -> None:
        interval = max(0.05, min(self.idle_seconds / 4, 30.0))
        while self._loop is loop:
            await asyncio.sleep(interval)
            try:
                evicted = await self.evict_idle()
            except Exception:  # a broken client must not end the reaping
                log.exception("evicting idle Telegram clients failed")
            else:
                if evicted:
                    log.debug("disconnected %s idle Telegram clients", evicted)

    def _stop_reaper(self) -> None:
        reaper, self._reaper = self._reaper, None
        if reaper is None or reaper.done():
            return
        owner = reaper.get_loop()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if owner is running:
            reaper.cancel()
        elif not owner.is_closed():
            owner.call_soon_threadsafe(reaper.cancel)

    # ------------------------------------------------------------- clients
    async def _client(
        self, bot: BotAccount, slot: _Slot, dead: PooledClient | None
    ) -> PooledClient:
        digest = token_digest(bot.token)
        async with slot.lock:
            pooled = slot.pooled
            fresh_session = dead is not None and pooled is dead
            if dead is not None and pooled is not dead and pooled is not None:
                return pooled
            if pooled is not None and not fresh_session:
                if pooled.token == digest and pooled.client.is_connected():
                    return pooled
            if pooled is not None:
                # Token changed, connection lost for good, or session dead: start over.
                slot.pooled = None
                await disconnect_quietly(pooled.client)
            if digest in self._refused_tokens:
                raise TokenInvalid("the bot token was refused by Telegram")
            if fresh_session:
                self._sessions.pop(bot.bot_id, None)
            pooled = await self._connect(bot, digest, None if fresh_session else self._session(bot))
            slot.pooled = pooled
            self._sessions[bot.bot_id] = (digest, pooled.client.session.save())
            return pooled

    def _session(self, bot: BotAccount) -> str | None:
        """The session this process last had for the bot (same token), else the stored."""
        known = self._sessions.get(bot.bot_id)
        if known is not None and known[0] == token_digest(bot.token):
            return known[1]
        return bot.session

    async def _connect(self, bot: BotAccount, digest: str, session: str | None) -> PooledClient:
        client: TelegramClient | None = None
        try:
            me = None
            if session:
                try:
                    # The stored session names its DC: it connects there, not to DC 2.
                    client = await open_client(self._settings, session)
                    me = await self._resume(client, bot)
                except (*SESSION_DEAD, errors.UserMigrateError):
                    # Refused or unknown key (connect already asks), or the bot was
                    # logged in on another DC than its home, which now sends it there
                    # (303 USER_MIGRATE; Telethon switched this client, key dropped).
                    me = None
            if me is None:
                if client is not None:
                    # The stored key is refused (or unknown): a fresh key, one login.
                    await disconnect_quietly(client)
                    client = None
                client = await open_client(self._settings, None)
                me = await self._login(client, bot, digest)
            return PooledClient(client=client, token=digest, me=me)
        except BaseException:
            if client is not None:
                await disconnect_quietly(client)
            raise

    @staticmethod
    async def _resume(client: TelegramClient, bot: BotAccount) -> types.User | None:
        """The connected stored session's bot; None if it is not (or no longer) this bot's."""
        try:
            me = await who_am_i(client)
        except SESSION_DEAD:
            return None
        if me is not None and not _token_matches(bot.token, me.id):
            return None  # the session belongs to another bot: never act as it
        return me

    async def _login(self, client: TelegramClient, bot: BotAccount, digest: str) -> types.User:
        self.floods.check(bot.token, bot.login_not_before)  # never log in into a wait
        self.logins += 1
        try:
            me = await sign_in(client, bot.token)
        except errors.FloodError as exc:
            flood = to_domain(exc)
            if isinstance(flood, FloodWait):
                await self.floods.note(bot.bot_id, bot.token, flood.seconds)
            raise flood from None
        except (errors.AccessTokenInvalidError, errors.AccessTokenExpiredError, TokenInvalid):
            self._refused_tokens.add(digest)
            raise
        except errors.UnauthorizedError as exc:
            # A 401 right after a successful import means the token was just revoked.
            self._refused_tokens.add(digest)
            raise to_domain(exc) from None
        try:
            await self._store.save(bot.bot_id, client.session.save())
        except Exception as exc:
            # The login itself worked: keep using it. Only a later process pays for
            # the lost session with one more login.
            log.error("bot %s: storing its new session failed (%s)", bot.bot_id, type(exc).__name__)
        else:
            log.info("bot %s logged in with its token; session stored", bot.bot_id)
        return me

    async def drop(self, bot_id: int, *, only: PooledClient | None = None) -> None:
        """Forget (and disconnect) the bot's client; with ``only``, just if it is still
        that one (a concurrent call may already have replaced it)."""
        slot = self._slots.get(bot_id)
        pooled = slot.pooled if slot is not None else None
        if slot is None or pooled is None or (only is not None and pooled is not only):
            return
        slot.pooled = None
        if not slot.users:
            del self._slots[bot_id]
            self._wake_next()
        await disconnect_quietly(pooled.client)

    async def forget(self, bot_id: int) -> None:
        """Disconnect the bot's client and forget its session (this process no longer
        owns the bot: another may have a newer one when it comes back here)."""
        self._sessions.pop(bot_id, None)
        await self.drop(bot_id)

    async def close(self) -> None:
        self._stop_reaper()
        slots, self._slots = list(self._slots.values()), OrderedDict()
        await asyncio.gather(*(disconnect_quietly(s.pooled.client) for s in slots if s.pooled))
