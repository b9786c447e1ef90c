"""One connected Telethon client per bot, reused across calls.

Logging in is what Telegram rate-limits hardest (repeated auth.importBotAuthorization
earns FLOOD_WAITs of 1,000+ s), so a client is created once per bot per process from the
bot's stored StringSession and kept connected. The token is used only when there is no
session or the stored one is dead, and then exactly once per attempt: a token Telegram
refuses is remembered and refused locally afterwards, so a revoked bot cannot cause a
login loop.

Beside each bot's client, its budget (``Pacer``): every call a process makes to
Telegram is paced, so the service stays under Telegram's flood limits instead of
collecting FLOOD_WAITs (Telegram lengthens the waits of clients that keep hitting them).
The gateway owns one Pacer: sends and reads of a bot share one budget, whichever caller
(a post, a sweep, the stats) makes them.

GCRA (a token bucket kept as one "theoretical arrival time" per key): per bot 30
calls/s with a burst of 30, per channel 20 messages a minute with a burst of 10 (the
limits tgemu enforces and the Bot FAQ states), each run 5 % below its rate. A message
needs a slot in both its bot's and its channel's bucket; any other call only in its
bot's (Telegram publishes no limit for reads; keeping them inside the send budget keeps
a sweep of thousands of bindings well inside what it tolerates).

A send's wait up to ``sleep_max`` is slept on the event loop; a longer one reserves the
slot for the message's ``random_id`` and raises FloodWait, so the task is retried when
the slot comes and finds it still its own (not pushed back behind later messages).
Limits are per process: several worker processes each pace alone, and Telegram's own
FLOOD_WAITs remain the backstop.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from telethon import TelegramClient, errors, functions, types
from telethon.crypto import rsa
from telethon.sessions import StringSession

from botmgr.telegram import dcs as dc_map
from botmgr.telegram.errors import SESSION_DEAD, to_domain
from botmgr.telegram.gateway import BotAccount, FloodWait, SessionStore, TokenInvalid
from botmgr.telegram.logins import LoginFloods

log = logging.getLogger(__name__)

_registered_keys: set[str] = set()


def register_server_key(pem: str) -> None:
    """Trust a (test/sandbox) server's RSA key; Telethon wants it in PKCS#1 form."""
    if pem in _registered_keys:
        return
    key = serialization.load_pem_public_key(pem.encode())
    pkcs1 = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    rsa.add_key(pkcs1.decode(), old=False)
    _registered_keys.add(pem)


def token_digest(token: str) -> str:
    # The pool compares and remembers tokens only by digest: no token kept in clear.
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ClientSettings:
    api_id: int
    api_hash: str
    server: tuple[str, int] | None = None
    connect_timeout: float = 10.0


@dataclass(slots=True)
class PooledClient:
    client: TelegramClient
    token: str  # digest
    me: types.User


def new_client(
    settings: ClientSettings, session: str | None, dcs: dc_map.Addresses | None = None
) -> TelegramClient:
    """A client for ``session`` (None: a new one). For the real Telegram the session's
    own DC and address are used as stored; for a test server its DC *id* is mapped to
    that server's current address (``dcs``, see botmgr/telegram/dcs.py), since the
    stored port may belong to an earlier run."""
    string_session = StringSession(session)
    options: dict[str, object] = {}
    factory: type[TelegramClient] = TelegramClient
    if settings.server is not None:
        addresses = dcs if dcs is not None else (dc_map.known(settings.server) or {})
        dc_map.point_session(string_session, settings.server, addresses)
        factory, options = dc_map.DcPinnedClient, {"dc_addresses": addresses}
    return factory(
        string_session,
        settings.api_id,
        settings.api_hash,
        receive_updates=False,
        flood_sleep_threshold=0,  # a worker never sleeps a flood wait: the task retries
        request_retries=0,  # a 500 must not be re-sent blindly (random_id, flood)
        raise_last_call_error=True,
        connection_retries=1,
        retry_delay=1,
        timeout=int(settings.connect_timeout),
        auto_reconnect=True,
        catch_up=False,
        base_logger="botmgr.telethon",
        **options,
    )


async def open_client(settings: ClientSettings, session: str | None) -> TelegramClient:
    """``new_client`` connected. A test server's DC map is learned on first use in the
    process: over this very client when it lands on the entry DC, else over a probe."""
    server = settings.server
    dcs = dc_map.known(server) if server is not None else None
    if server is not None and dcs is None and session:
        if StringSession(session).dc_id not in (0, dc_map.ENTRY_DC):
            probe = new_client(settings, None, {})
            try:
                await probe.connect()
                dcs = await dc_map.learn(server, probe)
            finally:
                await disconnect_quietly(probe)
    client = new_client(settings, session, dcs)
    try:
        await client.connect()
        if server is not None and dcs is None:
            client.dc_addresses = dict(await dc_map.learn(server, client))
    except BaseException:
        await disconnect_quietly(client)
        raise
    return client


async def who_am_i(client: TelegramClient) -> types.User | None:
    """The logged-in user, None if the key is not authorized (raises other errors).
    Not client.get_me(): that hides every 401 *and* caches."""
    try:
        users = await client(functions.users.GetUsersRequest([types.InputUserSelf()]))
    except SESSION_DEAD:
        return None
    user = users[0] if users else None
    return user if isinstance(user, types.User) else None


def _token_matches(token: str, user_id: int) -> bool:
    # A bot token starts with the bot's user id; only the server can check the rest.
    prefix = token.partition(":")[0]
    return not prefix.isdigit() or int(prefix) == user_id


async def sign_in(client: TelegramClient, token: str) -> types.User:
    """Log in with the bot token on the bot's home DC.

    A bot lives on one DC; elsewhere importBotAuthorization is answered 303 USER_MIGRATE_X
    (TDLib NetQueryDispatcher::try_fix_migrate, Pyrogram's sign_in_bot loop). Telethon
    1.45 has then already switched this client to DC X (client/users.py ``_call`` →
    ``_switch_dc``: new address, fresh auth key) but, with request_retries=0, not re-sent
    the import: it raises UserMigrateError. So: once more, on the same client. A second
    migration is not followed (TelegramUnavailable), never a loop."""
    try:
        user = await client.sign_in(bot_token=token)
    except errors.UserMigrateError as exc:
        log.info("bot login: Telegram sent it to DC %s; signing in there", exc.new_dc)
        user = await client.sign_in(bot_token=token)
    if not isinstance(user, types.User) or not user.bot:
        raise TokenInvalid("the token does not belong to a bot")
    return user


async def disconnect_quietly(client: TelegramClient) -> None:
    try:
        await asyncio.wait_for(client.disconnect(), 5)
        # Telethon keeps the reason of a broken connection in a future nobody awaits;
        # read it so asyncio does not report it as "never retrieved".
        ended = client.disconnected
        if ended.done() and not ended.cancelled():
            ended.exception()
    except Exception:  # a client being dropped may already be broken
        log.debug("disconnect failed", exc_info=True)


class ClientPool:
    def __init__(
        self, settings: ClientSettings, store: SessionStore, floods: LoginFloods | None = None
    ) -> None:
        self._settings = settings
        self._store = store
        self.floods = floods or LoginFloods(None)
        self._clients: dict[int, PooledClient] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._refused_tokens: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.logins = 0  # how many times this pool used a token (observability, tests)

    def _lock(self, bot_id: int) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # Telethon clients and asyncio locks belong to the loop they were made on;
            # a pool used from a new loop (e.g. a test harness, a forked worker) must
            # not touch them, so it starts empty there.
            if self._loop is not None:
                log.warning("client pool moved to a new event loop; reconnecting bots")
            self._loop, self._clients, self._locks = loop, {}, {}
        return self._locks.setdefault(bot_id, asyncio.Lock())

    async def get(self, bot: BotAccount, *, dead: PooledClient | None = None) -> PooledClient:
        """The connected, authorized client for ``bot``. ``dead``: this client's session
        was just refused; replace it by a token login (unless a concurrent call already
        did — one login, not one per waiting call)."""
        digest = token_digest(bot.token)
        async with self._lock(bot.bot_id):
            pooled = self._clients.get(bot.bot_id)
            fresh_session = dead is not None and pooled is dead
            if dead is not None and pooled is not dead and pooled is not None:
                return pooled
            if pooled is not None and not fresh_session:
                if pooled.token == digest and pooled.client.is_connected():
                    return pooled
            if pooled is not None:
                # Token changed, connection lost for good, or session dead: start over.
                del self._clients[bot.bot_id]
                await disconnect_quietly(pooled.client)
            if digest in self._refused_tokens:
                raise TokenInvalid("the bot token was refused by Telegram")
            pooled = await self._connect(bot, digest, None if fresh_session else bot.session)
            self._clients[bot.bot_id] = pooled
            return pooled

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
        pooled = self._clients.get(bot_id)
        if pooled is None or (only is not None and pooled is not only):
            return
        del self._clients[bot_id]
        await disconnect_quietly(pooled.client)

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        await asyncio.gather(*(disconnect_quietly(p.client) for p in clients))


# ----------------------------------------------------------------- pacing
# (seconds between messages, burst); 5 % slower than the limits themselves, since sends
# leave with some jitter and a bucket run exactly at its rate has no slack for it.
MARGIN = 1.05
BOT = (MARGIN / 30, 30)
CHANNEL = (MARGIN * 60 / 20, 10)


class Pacer:
    def __init__(
        self,
        *,
        bot: tuple[float, int] = BOT,
        channel: tuple[float, int] = CHANNEL,
        sleep_max: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = {"bot": bot, "channel": channel}
        self.sleep_max = sleep_max
        self._clock = clock
        self._tat: dict[tuple[str, Hashable], float] = {}
        self._slots: dict[int, float] = {}  # random_id → reserved start
        self._calls = 0

    def reserve_call(self, bot: Hashable, *, max_wait: float) -> float:
        """Seconds until a call (not a send) of ``bot`` may start. A wait up to
        ``max_wait`` takes the slot (the caller sleeps it); a longer one takes nothing
        (the caller gives up with a FloodWait of that many seconds)."""
        now = self._clock()
        self._prune(now)
        interval, burst = self._limits["bot"]
        key = ("bot", bot)
        start = max(now, self._tat.get(key, now) - interval * (burst - 1))
        wait = start - now
        if wait > max_wait:
            return wait
        self._tat[key] = max(self._tat.get(key, now), start) + interval
        return wait if wait > 1e-6 else 0.0

    def reserve(self, bot: Hashable, channel_id: int, random_id: int) -> float:
        """Seconds until this message may be sent (0: now); the slot is taken either way."""
        now = self._clock()
        self._prune(now)
        slot = self._slots.get(random_id)
        if slot is not None:
            if slot > now:
                return slot - now  # asked again early: the rest of the wait (maybe slept)
            del self._slots[random_id]
            return 0.0
        keys: tuple[tuple[str, Hashable], ...] = (("bot", bot), ("channel", channel_id))
        start = now
        for key in keys:
            interval, burst = self._limits[key[0]]
            start = max(start, self._tat.get(key, now) - interval * (burst - 1))
        for key in keys:
            self._tat[key] = max(self._tat.get(key, now), start) + self._limits[key[0]][0]
        wait = start - now
        if wait <= 1e-6:  # float rounding of a slot that is due now
            return 0.0
        if wait > self.sleep_max:
            self._slots[random_id] = start
        return wait

    def retry_after(self, wait: float) -> int:
        """Whole seconds for a task retry's countdown (never early)."""
        return max(1, math.ceil(wait))

    def _prune(self, now: float) -> None:
        self._calls += 1
        if self._calls % 1000:
            return
        # A key whose arrival time has passed is a full bucket, as if absent; a slot long
        # past belongs to a message that never came back (failed, or another process).
        self._tat = {k: t for k, t in self._tat.items() if t > now}
        self._slots = {r: s for r, s in self._slots.items() if s > now - 600}
