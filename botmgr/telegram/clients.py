"""Making Telethon clients (a bot's stored session on its DC, a token login that
follows USER_MIGRATE) and each bot's budget; the pool that keeps them is pool.py.

Each bot's budget (``Pacer``): every call a process makes to Telegram is paced, so the
service stays under Telegram's flood limits instead of collecting FLOOD_WAITs (Telegram
lengthens the waits of clients that keep hitting them). The gateway owns one Pacer:
sends and reads of a bot share one budget, whichever caller (a post, a sweep, the
stats) makes them.

GCRA (a token bucket kept as one "theoretical arrival time" per key): per bot 30
calls/s with a burst of 30, per channel 20 messages a minute with a burst of 10 (the
limits tgemu enforces and the Bot FAQ states), a bot's run 5 % and a channel's 2 %
below its rate. A message
needs a slot in both its bot's and its channel's bucket; any other call only in its
bot's (Telegram publishes no limit for reads; keeping them inside the send budget keeps
a sweep of thousands of bindings well inside what it tolerates).

A send's wait up to ``sleep_max`` is slept on the event loop; a longer one reserves the
slot for the message's ``random_id`` and raises FloodWait, so the task is retried when
the slot comes and finds it still its own (not pushed back behind later messages).
Only the process that owns a bot calls Telegram for it (botmgr/fleet/), so one
process's buckets are the bot's: exact whatever the number of processes. When a bot
changes owner, the old owner's buckets go with it (``export``/``absorb``, through Redis):
the new owner starts where the old one stopped, not with full buckets. Telegram's own
FLOOD_WAITs remain the backstop.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from telethon import TelegramClient, errors, functions, types
from telethon.crypto import rsa
from telethon.sessions import StringSession

from botmgr.telegram import dcs as dc_map
from botmgr.telegram.errors import SESSION_DEAD
from botmgr.telegram.gateway import TokenInvalid
from botmgr.telegram.metered import MeteredClient

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
    local_addr: str | None = None  # the address connections leave from (settings)


@dataclass(slots=True)
class PooledClient:
    client: TelegramClient
    token: str  # digest
    me: types.User


class CallSession(StringSession):  # type: ignore[misc]  # Telethon ships no types
    """A StringSession that keeps no entity table. Telethon files every user and chat of
    every answer into its session (``process_entities``) so that a later call may name
    them by id or username; the gateway always passes Input* objects it built itself
    (access hashes from ``ChannelHashes``), so the table was never read, and filling it
    was about a tenth of a rights check's CPU (py-spy, bench/sweep.py). What a session
    saves (its DC and auth key) is unchanged."""

    def process_entities(self, tlo: object) -> None:
        return None


def new_client(
    settings: ClientSettings, session: str | None, dcs: dc_map.Addresses | None = None
) -> TelegramClient:
    """A client for ``session`` (None: a new one). For the real Telegram the session's
    own DC and address are used as stored; for a test server its DC *id* is mapped to
    that server's current address (``dcs``, see botmgr/telegram/dcs.py), since the
    stored port may belong to an earlier run."""
    string_session = CallSession(session)
    options: dict[str, object] = {}
    factory: type[TelegramClient] = MeteredClient  # every request counted (metrics)
    if settings.local_addr is not None:
        options["local_addr"] = settings.local_addr
    if settings.server is not None:
        addresses = dcs if dcs is not None else (dc_map.known(settings.server) or {})
        dc_map.point_session(string_session, settings.server, addresses)
        factory = dc_map.DcPinnedClient
        options["dc_addresses"] = addresses
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
            # One probe at a time: a worker that starts with a queue full of posts
            # connects a client per bot at once, and each probe is a new auth key
            # (a Diffie-Hellman exchange) for the same map.
            async with _probing(server):
                dcs = dc_map.known(server)
                if dcs is None:
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


_probe_locks: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, int], asyncio.Lock]
] = weakref.WeakKeyDictionary()


def _probing(server: tuple[str, int]) -> asyncio.Lock:
    # Per loop: an asyncio lock belongs to the loop it was first used on (tests run
    # several loops in one process).
    locks = _probe_locks.setdefault(asyncio.get_running_loop(), {})
    return locks.setdefault(server, asyncio.Lock())


async def who_am_i(client: TelegramClient) -> types.User | None:
    """The logged-in user, None if the key is not authorized (raises other errors).
    Not client.get_me(): that hides every 401 *and* caches."""
    try:
        users = await client(functions.users.GetUsersRequest([types.InputUserSelf()]))
    except SESSION_DEAD:
        return None
    user = users[0] if users else None
    return user if isinstance(user, types.User) else None


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


# ----------------------------------------------------------------- pacing
# (seconds between messages, burst); slower than the limits themselves, since sends
# leave with some jitter and a bucket run exactly at its rate has no slack for it. The
# jitter is milliseconds: 5 % of a bot's 33 ms step, but 2 % of a channel's 3 s step is
# already 60 ms (at 5 % a run bound by channels stayed under 0.95 of the ceiling).
MARGIN = 1.05
CHANNEL_MARGIN = 1.02
BOT = (MARGIN / 30, 30)
CHANNEL = (CHANNEL_MARGIN * 60 / 20, 10)


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
        self._keys_of: dict[int, set[tuple[str, Hashable]]] = {}  # bot id → its buckets
        self._spent_at: dict[Hashable, float] = {}  # bot → taken from a dead owner, when

    def reserve_call(self, bot: Hashable, *, max_wait: float) -> float:
        """Seconds until a call (not a send) of ``bot`` may start. A wait up to
        ``max_wait`` takes the slot (the caller sleeps it); a longer one takes nothing
        (the caller gives up with a FloodWait of that many seconds)."""
        now = self._clock()
        self._prune(now)
        interval, burst = self._limits["bot"]
        key = ("bot", bot)
        tat = self._tat_of(key, bot, now)
        start = max(now, tat - interval * (burst - 1))
        wait = start - now
        if wait > max_wait:
            return wait
        self._tat[key] = max(tat, start) + interval
        self._note(bot, (key,))
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
        tats = [self._tat_of(key, bot, now) for key in keys]
        for key, tat in zip(keys, tats, strict=True):
            interval, burst = self._limits[key[0]]
            start = max(start, tat - interval * (burst - 1))
        for key, tat in zip(keys, tats, strict=True):
            self._tat[key] = max(tat, start) + self._limits[key[0]][0]
        self._note(bot, keys)
        wait = start - now
        if wait <= 1e-6:  # float rounding of a slot that is due now
            return 0.0
        if wait > self.sleep_max:
            self._slots[random_id] = start
        return wait

    def _tat_of(self, key: tuple[str, Hashable], bot: Hashable, now: float) -> float:
        """The bucket's arrival time (``now``: full). For a bot taken from an owner that
        died, every bucket it uses counts as spent whole at the takeover, unless known
        to be later: the owner may have sent a whole burst since its last export, into
        channels the export could not name (their buckets were full then)."""
        tat = self._tat.get(key, now)
        taken = self._spent_at.get(bot)
        if taken is None:
            return tat
        interval, burst = self._limits[key[0]]
        return max(tat, taken + interval * burst)

    def _note(self, bot: Hashable, keys: tuple[tuple[str, Hashable], ...]) -> None:
        bot_id = bot[0] if isinstance(bot, tuple) else bot
        if isinstance(bot_id, int):
            self._keys_of.setdefault(bot_id, set()).update(keys)

    def export(self, bot_id: int) -> dict[str, float]:
        """The bot's buckets that are not full, as wall-clock arrival times (another
        process's monotonic clock means nothing here): {"bot": t, "c<id>": t, …}."""
        now, wall = self._clock(), time.time()
        state: dict[str, float] = {}
        for key in self._keys_of.get(bot_id, ()):
            tat = self._tat.get(key)
            if tat is None or tat <= now:
                continue
            name = "bot" if key[0] == "bot" else f"c{key[1]}"
            state[name] = max(state.get(name, 0.0), wall + (tat - now))
        return state

    def absorb(
        self, bot: Hashable, state: dict[str, float], margin: float = 0.0, *, died: bool = False
    ) -> None:
        """Take over another process's buckets of ``bot`` (``export``), ``margin``
        seconds later still: what it may have sent since it last exported. ``died``:
        the owner did not hand the bot back, so any bucket may be spent (``_tat_of``)."""
        now, wall = self._clock(), time.time()
        if died:
            self._spent_at[bot] = now
        keys: list[tuple[str, Hashable]] = []
        for name, at in state.items():
            key: tuple[str, Hashable] = (
                ("bot", bot) if name == "bot" else ("channel", int(name[1:]))
            )
            tat = now + (at - wall) + margin
            if tat > now:
                self._tat[key] = max(self._tat.get(key, now), tat)
                keys.append(key)
        self._note(bot, tuple(keys))

    def _prune(self, now: float) -> None:
        self._calls += 1
        if self._calls % 1000:
            return
        # A key whose arrival time has passed is a full bucket, as if absent; a slot long
        # past belongs to a message that never came back (failed, or another process).
        self._tat = {k: t for k, t in self._tat.items() if t > now}
        self._keys_of = {
            b: alive for b, keys in self._keys_of.items() if (alive := keys & self._tat.keys())
        }
        self._slots = {r: s for r, s in self._slots.items() if s > now - 600}
        longest = max(interval * burst for interval, burst in self._limits.values())
        self._spent_at = {b: t for b, t in self._spent_at.items() if t > now - longest}
