"""shares.run_shares: a fleet job's bot shares, at most N at a time (the client pool's
cap), each made only when it starts."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any

from botmgr.shares import run_shares


async def test_at_most_n_shares_run_at_once_and_every_one_runs() -> None:
    running = peak = made = 0
    done: list[int] = []
    made_when_first_started: list[int] = []

    async def share(i: int) -> None:
        nonlocal running, peak
        made_when_first_started.append(made)
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1
        done.append(i)

    def shares() -> Iterator[Coroutine[Any, Any, None]]:
        nonlocal made
        for i in range(50):
            made += 1
            yield share(i)

    await run_shares(shares(), 4)
    assert peak == 4 and sorted(done) == list(range(50))
    assert made_when_first_started[0] <= 4  # not 50 coroutines waiting up front


async def test_without_a_limit_all_run_together() -> None:
    started = asyncio.Event()
    count = 0

    async def share() -> None:
        nonlocal count
        count += 1
        if count == 10:
            started.set()
        await asyncio.wait_for(started.wait(), 1)  # only passes if all 10 run at once

    await run_shares((share() for _ in range(10)), None)
    assert count == 10
