"""The hourly rights sweep run by real worker processes (the fleet), beside its lower bound.

    .venv/bin/python -m bench.sweep_fleet [--bots 100] [--per-bot 100] [--latency-ms 50]
        [--workers 1,2] [--concurrency 16]

bench/sweep.py measures the sweep's code in one process; this runs it as production
does: ``botmgr worker`` processes sharing one Redis and one PostgreSQL, each owning the
bots it holds a lease on (botmgr/fleet/). The sweep task (CHECK_ACTIVE, sent by name as
beat sends it) lands on one worker, which sweeps the bots it owns or may take and moves
the other bots' shares to their owners' queues. Timed: from the send until every binding
carries a check made after it (polled every 50 ms), for each worker count in ``--workers``
in turn (new processes each time: a cold sweep first, with its logins, then
``--warm-runs`` warm ones, each once every bot's budget is full again). The lower bound
is bench/sweep.py's: each bot's budget (a burst, then one call per interval) for its
share, plus one latency.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


async def timed_sweep(
    celery: Celery, engine: AsyncEngine, total: int
) -> tuple[float, dict[str, Any]]:
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


async def sweeps(
    env: dict[str, str], total: int, pids: list[int], warm_runs: int
) -> list[tuple[float, dict[str, Any], list[float]]]:
    """Cold, then ``warm_runs`` warm sweeps: each one's seconds, answer and the CPU
    seconds of ``pids`` (workers, then tgemu) in it."""
    celery = make_celery(settings_from(env))
    engine = create_async_engine(env["BOTMGR_DATABASE_URL"])
    runs: list[tuple[float, dict[str, Any], list[float]]] = []
    try:
        for n in range(1 + warm_runs):
            if n:
                await asyncio.sleep(pacing.BOT[0] * pacing.BOT[1] + 0.5)  # budgets full
            cpu = [_cpu(pid) for pid in pids]
            seconds, body = await timed_sweep(celery, engine, total)
            runs.append((seconds, body, [_cpu(pid) - c for pid, c in zip(pids, cpu, strict=True)]))
    finally:
        await engine.dispose()
    return runs


def run_fleet(
    env: dict[str, str],
    workdir: Path,
    workers: int,
    concurrency: int,
    total: int,
    warm: int,
    emu_pid: int,
) -> list[tuple[float, dict[str, Any], list[float]]]:
    processes = [
        WorkerProcess(env, workdir / f"worker-{workers}-{n}.log", concurrency=concurrency)
        for n in range(workers)
    ]
    try:
        for process in processes:
            process.wait_ready()
        pids = [p.process.pid for p in processes] + [emu_pid]
        runs = asyncio.run(sweeps(env, total, pids, warm))
    finally:
        for process in processes:
            process.stop()
    for n, (_, body, _) in enumerate(runs):
        print(f"{workers} worker(s), {'warm ' + str(n) if n else 'cold'}: {body['body']}")
    return runs


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
    parser.add_argument("--warm-runs", type=int, default=2, help="warm sweeps after the cold")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    cores = os.cpu_count() or 1
    total = args.bots * args.per_bot
    interval, burst = pacing.BOT
    bound = max(0, args.per_bot - burst) * interval + args.latency_ms / 1000

    workdir = Path(tempfile.mkdtemp(prefix="botmgr-bench-sweep-fleet-"))
    with (
        fresh_database("botmgr_bench") as url,
        spawn_tgemu(workdir / "tgemu", "--latency-ms", str(args.latency_ms)) as emu,
        # The test harness's 10 s visibility timeout would deliver a sweep still running
        # (the cold one takes longer) again: production's default, as the README says.
        scoped_env(
            url, emu, BOTMGR_TASK_WAIT_CAP="60", BOTMGR_CELERY_VISIBILITY_TIMEOUT="300"
        ) as env,
    ):
        settings = settings_from(env)
        asyncio.run(seed(emu, settings, args.bots, args.per_bot, 0))
        assert emu.process is not None
        emu_pid = emu.process.pid
        figures = {
            n: run_fleet(env, workdir, n, args.concurrency, total, args.warm_runs, emu_pid)
            for n in counts
        }
        logins = sum(emu.metrics()["logins"].values())
    rows = [
        [
            n,
            "cold" if i == 0 else f"warm {i}",
            f"{seconds:.2f}",
            f"{seconds / bound:.2f}",
            body["body"]["moved"],
            " + ".join(f"{c:.1f}" for c in cpu[:-1]),
            f"{cpu[-1]:.1f}",
            # The CPU the run needed, spread perfectly over the machine's cores: a second
            # lower bound, this machine's (the service and the emulator share it).
            f"{sum(cpu) / cores:.2f}",
        ]
        for n, runs in figures.items()
        for i, (seconds, body, cpu) in enumerate(runs)
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
            "sweep",
            "seconds",
            "× bound",
            "moved to owners",
            "worker CPU s",
            "tgemu CPU s",
            f"CPU / {cores} cores s",
        ],
    )


if __name__ == "__main__":
    main()
