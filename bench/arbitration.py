"""Arbitration under load: 1,000 concurrent binds over 100 bots through the API process.

    .venv/bin/python -m bench.arbitration [--binds 1000] [--bots 100] [--clients 64]

100 active bots (rows written directly: arbitration never calls Telegram), then
``--binds`` POST /channels/ without ``bot_id`` sent at once (``--clients`` connections in
flight). Invite links keep each binding ``new`` whatever a worker would do, so the
bindings table shows exactly the arbitration's choices. No worker runs: the bind tasks
stay queued. Measured: binds/s, latency p50/p99, and the spread (max − min bindings per
bot; target ≤ 1).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from bench.common import report
from botmgr.models import Binding
from tests.harness.db import fresh_database, insert_bot
from tests.harness.env import scoped_env, settings_from
from tests.harness.processes import ApiProcess, running


async def seed(env: dict[str, str], bots: int) -> None:
    engine = create_async_engine(env["BOTMGR_DATABASE_URL"])
    async with AsyncSession(engine, expire_on_commit=False) as session:
        for _ in range(bots):
            await insert_bot(session, settings_from(env))
    await engine.dispose()


async def bind_all(api: ApiProcess, binds: int, clients: int) -> tuple[float, list[float], Counter]:
    latencies: list[float] = []
    statuses: Counter = Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=api.url, auth=api.auth, timeout=120, limits=limits
    ) as client:

        async def bind(i: int) -> None:
            started = time.perf_counter()
            response = await client.post(
                "/channels/", json={"channel": f"https://t.me/+bench{i}x{secrets.token_hex(6)}"}
            )
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] += 1

        started = time.perf_counter()
        await asyncio.gather(*(bind(i) for i in range(binds)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies, statuses


async def counts(env: dict[str, str]) -> Counter:
    engine = create_async_engine(env["BOTMGR_DATABASE_URL"])
    async with AsyncSession(engine) as session:
        rows = (await session.execute(select(Binding.bot_id))).scalars().all()
    await engine.dispose()
    return Counter(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binds", type=int, default=1000)
    parser.add_argument("--bots", type=int, default=100)
    parser.add_argument("--clients", type=int, default=64)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="botmgr-bench-arbitration-"))
    with fresh_database() as url, scoped_env(url, BOTMGR_DEV="1") as env:
        asyncio.run(seed(env, args.bots))
        with running(ApiProcess(env, workdir / "api.log", loglevel="WARNING")) as api:
            elapsed, latencies, statuses = asyncio.run(bind_all(api, args.binds, args.clients))
            per_bot = asyncio.run(counts(env))
    loads = [per_bot.get(i, 0) for i in range(1, args.bots + 1)]
    cuts = statistics.quantiles(latencies, n=100)
    report(
        "Arbitration",
        {
            "binds × bots": f"{args.binds} × {args.bots}",
            "clients in flight": args.clients,
            "answers": dict(statuses),
            "logs": str(workdir),
        },
        [
            [
                sum(per_bot.values()),
                f"{args.binds / elapsed:.1f}",
                f"{elapsed:.2f}",
                f"{cuts[49] * 1000:.0f}",
                f"{cuts[98] * 1000:.0f}",
                min(loads),
                max(loads),
                max(loads) - min(loads),
            ]
        ],
        ["bindings", "binds/s", "seconds", "p50 ms", "p99 ms", "min/bot", "max/bot", "spread"],
    )


if __name__ == "__main__":
    main()
