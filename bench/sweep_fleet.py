"""The hourly rights sweep run by real worker processes (the fleet), beside its lower bound.

    .venv/bin/python -m bench.sweep_fleet [--bots 100] [--per-bot 100] [--latency-ms 50]
        [--workers 1,2] [--concurrency 16]

bench/sweep.py measures the sweep's code in one process; this runs it as production
does: ``botmgr worker`` processes sharing one Redis and one PostgreSQL, each owning the
bots it holds a lease on (botmgr/fleet/). The sweep task (CHECK_ACTIVE, sent by name as
beat sends it) lands on one worker, which sweeps the bots it owns or may take and moves
the other bots' shares to their owners' queues. Timed: from the send until every binding
carries a check made after it (polled every 50 ms), for each worker count in ``--workers``
in turn (new processes each time: a cold sweep first, with its logins, then the measured
warm one once every bot's budget is full again). The lower bound is bench/sweep.py's:
each bot's budget (a burst, then one call per interval) for its share, plus one latency.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from celery import Celery
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.common import report
from bench.sweep import seed
from botmgr.models import Binding, BindingStatus
from botmgr.tasks.names import CHECK_ACTIVE, QUEUE
from botmgr.telegram import clients as pacing
from botmgr.worker.app import make_celery
from tests.harness.db import fresh_database
from tests.harness.env import scoped_env, settings_from
from tests.harness.processes import WorkerProcess
from tests.harness.tgemu import spawn_tgemu

POLL = 0.05


async def checked_since(engine: AsyncEngine, since: datetime) -> int:
    async with engine.connect() as conn:
        stmt = select(func.count()).where(Binding.last_checked_at >= since)
        return int(await conn.scalar(stmt) or 0)


async def timed_sweep(celery: Celery, engine: AsyncEngine, total: int) -> tuple[float, dict]:
    """Seconds from sending the sweep until every binding was checked after the send."""
    async with engine.begin() as conn:  # every binding in play again (a previous loss)
        await conn.execute(update(Binding).values(status=BindingStatus.active))
    since = datetime.now(UTC)
    started = time.perf_counter()
    result = await asyncio.to_thread(celery.send_task, CHECK_ACTIVE, queue=QUEUE)
    while await checked_since(engine, since) < total:
        if time.perf_counter() - started > 600:
            raise RuntimeError("the sweep did not finish within 600 s")
        await asyncio.sleep(POLL)
    seconds = time.perf_counter() - started
    body = await asyncio.to_thread(result.get, timeout=60)
    return seconds, body


async def cold_then_warm(
    env: dict[str, str], total: int, processes: list[WorkerProcess]
) -> tuple[float, dict, float, dict, float]:
    """Both sweeps' seconds and answers, and the workers' CPU seconds in the warm one."""
    celery = make_celery(settings_from(env))
    engine = create_async_engine(env["BOTMGR_DATABASE_URL"])
    try:
        cold, cold_body = await timed_sweep(celery, engine, total)
        await asyncio.sleep(pacing.BOT[0] * pacing.BOT[1] + 0.5)  # every budget full again
        cpu = sum(_cpu(p.process.pid) for p in processes)
        warm, body = await timed_sweep(celery, engine, total)
        cpu = sum(_cpu(p.process.pid) for p in processes) - cpu
    finally:
        await engine.dispose()
    return cold, cold_body, warm, body, cpu


def run_fleet(
    env: dict[str, str], workdir: Path, workers: int, concurrency: int, total: int
) -> dict[str, float]:
    processes = [
        WorkerProcess(env, workdir / f"worker-{workers}-{n}.log", concurrency=concurrency)
        for n in range(workers)
    ]
    try:
        for process in processes:
            process.wait_ready()
        cold, cold_body, warm, body, cpu = asyncio.run(cold_then_warm(env, total, processes))
    finally:
        for process in processes:
            process.stop()
    print(f"{workers} worker(s): cold {cold_body}, warm {body}")
    return {"cold": cold, "warm": warm, "moved": body["body"]["moved"], "cpu": cpu}


def _cpu(pid: int) -> float:
    """CPU seconds a live process used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", type=int, default=100)
    parser.add_argument("--per-bot", type=int, default=100)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--workers", default="1,2", help="worker counts to run, in turn")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    total = args.bots * args.per_bot
    interval, burst = pacing.BOT
    bound = max(0, args.per_bot - burst) * interval + args.latency_ms / 1000

    workdir = Path(tempfile.mkdtemp(prefix="botmgr-bench-sweep-fleet-"))
    with (
        fresh_database("botmgr_bench") as url,
        spawn_tgemu(workdir / "tgemu", "--latency-ms", str(args.latency_ms)) as emu,
        scoped_env(url, emu, BOTMGR_TASK_WAIT_CAP="60") as env,
    ):
        settings = settings_from(env)
        asyncio.run(seed(emu, settings, args.bots, args.per_bot, 0))
        figures = {n: run_fleet(env, workdir, n, args.concurrency, total) for n in counts}
        logins = sum(emu.metrics()["logins"].values())
    rows = [
        [
            n,
            f"{f['warm']:.2f}",
            f"{bound:.2f}",
            f"{f['warm'] / bound:.2f}",
            f"{f['cold']:.2f}",
            int(f["moved"]),
            f"{f['cpu']:.1f}",
        ]
        for n, f in figures.items()
    ]
    report(
        "Rights sweep by worker processes",
        {
            "bindings × bots": f"{total} × {args.bots}",
            "tgemu latency": f"{args.latency_ms} ms",
            "threads per worker": args.concurrency,
            "lower bound": f"{bound:.2f} s (each bot: burst {burst}, then 1 call / "
            f"{interval * 1000:.0f} ms, + 1 latency)",
            "token logins (all runs)": logins,
            "logs": str(workdir),
        },
        rows,
        [
            "workers",
            "warm sweep s",
            "bound s",
            "× bound",
            "cold sweep s",
            "moved to owners (warm)",
            "worker CPU s (warm)",
        ],
    )


if __name__ == "__main__":
    main()
