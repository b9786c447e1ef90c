"""How fast a sweep may talk to Telegram: per bot, a few calls in flight and at most
``PER_BOT_RATE`` call starts per second (the Bot FAQ's ~30 requests/s per bot); overall,
at most ``TOTAL_IN_FLIGHT`` calls, so that one sweep over many bots cannot exhaust the
worker's connections. Telegram publishes no limits for reads; these keep a sweep of
thousands of bindings well inside what it tolerates for sends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
X = TypeVar("X")

PER_BOT_RATE = 30.0  # call starts per second per bot
PER_BOT_IN_FLIGHT = 4  # ≥ rate × latency: 30/s × 50 ms needs 1.5
TOTAL_IN_FLIGHT = 256


class Lane:
    """One bot's share of a sweep: calls start at most ``rate`` per second, at most
    ``in_flight`` at a time, and under the sweep's overall limit."""

    def __init__(
        self,
        total: asyncio.Semaphore,
        *,
        rate: float = PER_BOT_RATE,
        in_flight: int = PER_BOT_IN_FLIGHT,
    ) -> None:
        self._total = total
        self._in_flight = in_flight
        self._own = asyncio.Semaphore(in_flight)
        self._interval = 1.0 / rate
        self._next_start = 0.0

    async def _pace(self) -> None:
        # Reserve a start slot first, then sleep until it: concurrent callers queue up.
        now = time.monotonic()
        start = max(now, self._next_start)
        self._next_start = start + self._interval
        if start > now:
            await asyncio.sleep(start - now)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        async with self._own, self._total:
            await self._pace()
            return await fn()

    async def each(self, items: Iterable[X], work: Callable[[X], Awaitable[None]]) -> None:
        """``work(item)`` for every item, ``in_flight`` at a time: a few workers take
        items in turn, rather than one waiting task per item (10,000 of them in a big
        sweep, all contending for the same semaphores)."""
        pending = iter(items)

        async def worker() -> None:
            for item in pending:  # shared: each item is taken by one worker
                await work(item)

        await asyncio.gather(*(worker() for _ in range(self._in_flight)))


def total_limit() -> asyncio.Semaphore:
    return asyncio.Semaphore(TOTAL_IN_FLIGHT)
