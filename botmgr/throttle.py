"""Login throttling: failed logins — API HTTP Basic and the console's form alike — are
counted per client address and per username in fixed windows, and past
``login_max_failures`` in ``login_window_seconds`` an attempt is refused with 429 and
``Retry-After`` until its window ends, whether its password is right or not (else the
answer would tell a throttled guesser which guess was right).

Decisions:

- **Redis, INCR + EXPIRE**, in the service's own Redis under ``BOTMGR_REDIS_PREFIX``: every
  API process sees the same counts. A fixed window, not a sliding one: one key and two
  commands per counter, and at worst twice the limit across a window's edge, which does
  not change what a guesser gets in a day. Written here rather than with ``limits``: its
  async Redis storage brings a client (coredis) and pool of its own, and a round trip
  per limit, where one pipeline reads both counters and the known mark below.
- **Per username too**, so a guesser with many addresses is bounded — which lets anyone
  lock the operator out by failing 10 times a minute under his name. Except where he
  already is: an address that logged in with the right password in the last 24 hours is
  *known* for that username and not held back by the username's count, only by its own
  address's. A guesser cannot make an address known without the password.
- **Right credentials cost no Redis round trip per request**: once an (address, username)
  pair passed, the process lets it pass again for ``CLEAR_SECONDS`` without asking.
  Wrong credentials always reach Redis (they are counted there).
- **Redis down: fail open to this process's memory**, never closed. Closed would make a
  Redis outage an outage of the whole API (reads work without Redis) and of the console;
  open-to-memory still bounds guessing, per process (N processes: N × the limit). The
  throttle's Redis client gives up after ``REDIS_TIMEOUT`` s, and after a failure the
  next ``REDIS_RETRY_SECONDS`` s are counted in memory without asking it, so a stalled
  Redis costs one short wait, not one per request.
- A success resets nothing: other addresses' counts (a guesser's) stand, and so does its
  own address's until its window ends.
- Failed logins are logged (channel, username, address, counts) — never the password;
  past the limit only the first refusal of a window is logged, so a flood cannot flood
  the log.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from starlette.requests import HTTPConnection

from botmgr.settings import Settings

log = logging.getLogger(__name__)

Channel = Literal["api", "console"]
T = TypeVar("T")

CLEAR_SECONDS = 5.0  # a pair that passed passes again this long without a Redis read
KNOWN_SECONDS = 24 * 3600  # an address that logged in is known to its username this long
KNOWN_REFRESH_SECONDS = 3600  # a known mark older than this is written again on success
REDIS_TIMEOUT = 0.5  # the throttle's own Redis client: short, it sits before every login
REDIS_RETRY_SECONDS = 5.0  # after a Redis failure, count in memory this long
MEMORY_KEYS = 10_000  # memory kept per process (counts while Redis is down, clear pairs)


def client_address(connection: HTTPConnection) -> str:
    """The client's address as uvicorn set it: the peer, or the peer's X-Forwarded-For
    when the peer is in ``BOTMGR_FORWARDED_ALLOW_IPS`` (nginx). Nothing else is read from
    headers here, so a client cannot choose its own address."""
    return connection.client.host if connection.client else "unknown"


@dataclass(frozen=True)
class Counts:
    address: int
    address_ms: int  # what is left of the address's window in ms (PTTL: < 0 for none)
    username: int
    username_ms: int
    known_since: float | None  # when this address last logged in under this username


class _Keys:
    def __init__(self, prefix: str, address: str, username: str) -> None:
        # Usernames are chosen by whoever tries: hashed, so a key is short and plain.
        user = hashlib.sha256(username.encode(errors="surrogatepass")).hexdigest()[:32]
        self.address = f"{prefix}login:fail:addr:{address}"
        self.username = f"{prefix}login:fail:user:{user}"
        self.known = f"{prefix}login:known:{user}:{address}"


class _Store(Protocol):
    async def read(self, keys: _Keys) -> Counts: ...
    async def fail(self, keys: _Keys, window: int) -> tuple[int, int]: ...
    async def mark_known(self, keys: _Keys) -> None: ...


class _RedisStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def read(self, keys: _Keys) -> Counts:
        pipe = self.client.pipeline(transaction=False)
        for key in (keys.address, keys.username):
            pipe.get(key)
            pipe.pttl(key)
        pipe.get(keys.known)
        address, address_ms, username, username_ms, known = await pipe.execute()
        since = float(known) if known is not None else None
        return Counts(int(address or 0), address_ms, int(username or 0), username_ms, since)

    async def fail(self, keys: _Keys, window: int) -> tuple[int, int]:
        # MULTI: the two steps of a key run as one, so it cannot expire between them.
        pipe = self.client.pipeline(transaction=True)
        for key in (keys.address, keys.username):
            # The first failure opens the window (SET NX EX: a key at 0 with its expiry);
            # INCR keeps the expiry, so later failures do not extend it and no count lives
            # for ever. (Not EXPIRE NX: that needs Redis 7, the sandbox's embedded Redis
            # is 6.2.)
            pipe.set(key, 0, ex=window, nx=True)
            pipe.incr(key)
        _, address, _, username = await pipe.execute()
        return int(address), int(username)

    async def mark_known(self, keys: _Keys) -> None:
        await self.client.set(keys.known, str(time.time()), ex=KNOWN_SECONDS)


class _MemoryStore:
    """The same counts in this process, while Redis cannot be reached."""

    def __init__(self) -> None:
        self.counts: dict[str, tuple[int, float]] = {}  # key → (count, window's end)
        self.known: dict[str, float] = {}  # key → when marked

    def _get(self, key: str) -> tuple[int, int]:
        count, ends = self.counts.get(key, (0, 0.0))
        left = int((ends - time.monotonic()) * 1000)
        return (count, left) if left > 0 else (0, -2)

    async def read(self, keys: _Keys) -> Counts:
        since = self.known.get(keys.known)
        return Counts(*self._get(keys.address), *self._get(keys.username), since)

    async def fail(self, keys: _Keys, window: int) -> tuple[int, int]:
        now = time.monotonic()
        if len(self.counts) > MEMORY_KEYS:
            self.counts = {k: v for k, v in self.counts.items() if v[1] > now}
        address, username = (self._bump(key, now, window) for key in (keys.address, keys.username))
        return address, username

    def _bump(self, key: str, now: float, window: int) -> int:
        count, left = self._get(key)
        self.counts[key] = (count + 1, now + left / 1000 if left > 0 else now + window)
        return count + 1

    async def mark_known(self, keys: _Keys) -> None:
        if len(self.known) > MEMORY_KEYS:
            self.known.clear()
        self.known[keys.known] = time.time()


class LoginThrottle:
    """One per API process (``app.state.throttle``), shared by the API and the console."""

    def __init__(self, settings: Settings) -> None:
        self.prefix = settings.redis_prefix
        self.limit = settings.login_max_failures
        self.window = settings.login_window_seconds
        self._url = settings.redis_url
        self._redis: _RedisStore | None = None  # made on first use, on the serving loop
        self._memory = _MemoryStore()
        self._redis_down_until = 0.0
        self._clear: dict[tuple[str, str], float] = {}  # (address, username) → until

    async def check(
        self, *, channel: Channel, address: str, username: str, valid: bool
    ) -> int | None:
        """Seconds to refuse this attempt for (429, Retry-After), or None: let its answer
        stand — in if ``valid``, else refused, and counted and logged here."""
        pair = (address, username)
        if valid and self._clear.get(pair, 0.0) > time.monotonic():
            return None
        keys = _Keys(self.prefix, address, username)
        counts = await self._call(lambda store: store.read(keys))
        now = time.time()
        known = counts.known_since is not None and now - counts.known_since < KNOWN_SECONDS
        waits = [0]
        if counts.address >= self.limit:
            waits.append(counts.address_ms)
        if counts.username >= self.limit and not known:
            waits.append(counts.username_ms)
        if len(waits) > 1:
            # A count without a window cannot be left by EXPIRE NX; if it were, a whole one.
            wait_ms = max(w if w > 0 else self.window * 1000 for w in waits)
            return max(1, math.ceil(wait_ms / 1000))
        if valid:
            stale = counts.known_since is None or now - counts.known_since > KNOWN_REFRESH_SECONDS
            if stale:
                await self._call(lambda store: store.mark_known(keys))
            await self._memory.mark_known(keys)  # for a later Redis outage
            if len(self._clear) > MEMORY_KEYS:
                self._clear.clear()
            self._clear[pair] = time.monotonic() + CLEAR_SECONDS
            return None
        by_address, by_username = await self._call(lambda store: store.fail(keys, self.window))
        log.warning(
            "failed login: channel=%s username=%r address=%s; failures in this %d s "
            "window: address %d, username %d (limit %d)",
            channel,
            username[:64],
            address,
            self.window,
            by_address,
            by_username,
            self.limit,
        )
        for what, count, who in (
            ("address", by_address, address),
            ("username", by_username, repr(username[:64])),
        ):
            if count == self.limit:
                log.warning(
                    "login throttled: %s %s reached %d failed logins; further attempts "
                    "refused with 429 until its %d s window ends",
                    what,
                    who,
                    count,
                    self.window,
                )
        return None

    async def _call(self, operation: Callable[[_Store], Awaitable[T]]) -> T:
        # Redis when it answers; this process's memory while it does not.
        if time.monotonic() >= self._redis_down_until:
            try:
                return await operation(self._redis_store())
            except (RedisError, OSError) as exc:
                log.warning(
                    "login throttle: Redis unreachable (%s); counting in this process "
                    "for the next %g s",
                    type(exc).__name__,
                    REDIS_RETRY_SECONDS,
                )
                self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
        return await operation(self._memory)

    def _redis_store(self) -> _RedisStore:
        if self._redis is None:
            client = aioredis.from_url(
                self._url,
                socket_timeout=REDIS_TIMEOUT,
                socket_connect_timeout=REDIS_TIMEOUT,
                retry=Retry(NoBackoff(), 0),
            )
            self._redis = _RedisStore(client)
        return self._redis

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.client.aclose()
            self._redis = None
