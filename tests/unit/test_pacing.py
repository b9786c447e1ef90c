"""A bot's Lane: call starts are spaced by the rate, calls in flight are bounded, and
``each`` hands every item to exactly one worker."""

from __future__ import annotations

import asyncio
import itertools
import time

from botmgr.channels.pacing import Lane


async def test_starts_are_paced_and_bounded() -> None:
    lane = Lane(asyncio.Semaphore(100), rate=50, in_flight=2)
    starts: list[float] = []
    running = peak = 0

    async def work() -> None:
        nonlocal running, peak
        starts.append(time.monotonic())
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1

    await asyncio.gather(*(lane.call(work) for _ in range(10)))
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.019  # 50/s: 20 ms apart (timer slack is only ever late)
    assert peak == 2


async def test_total_limit_is_shared_between_lanes() -> None:
    total = asyncio.Semaphore(3)
    lanes = [Lane(total, rate=1000, in_flight=4) for _ in range(3)]
    running = peak = 0

    async def work() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1

    await asyncio.gather(*(lane.call(work) for lane in lanes for _ in range(4)))
    assert peak == 3


async def test_each_takes_every_item_once() -> None:
    lane = Lane(asyncio.Semaphore(10), rate=10_000, in_flight=3)
    seen: list[int] = []

    async def work(item: int) -> None:
        await lane.call(lambda: asyncio.sleep(0.001))
        seen.append(item)

    await lane.each(range(25), work)
    assert sorted(seen) == list(range(25))
