"""Posting throughput against Telegram's flood limits, and exactly-once delivery.

    .venv/bin/python -m bench.posting [--bots 20] [--channels 200] [--posts 2000]
        [--latency-ms 50] [--concurrency 16] [--workers 1] [--hosts K] [--prequeue]
        [--no-anchor]

N bots × M channels in tgemu (rate limits on: per bot 30 msg/s with a burst of 30, per
channel 20/min with a burst of 10), every channel bound to one bot (round robin) and
active; K posts enqueued through the API (POST /messages), spread round robin over the
channels. Measured: sustained posts/s from the first enqueue to the last post sent, the
ceiling the limits allow for this N, M, K (token buckets start full: a bucket of burst b
and rate r passes n messages in max(0, n − b) / r seconds; the slowest bucket bounds the
run), their ratio, flood waits tgemu answered, and duplicates / losses by random_id
against tgemu's stored messages, and tgemu's AUTH_KEY_DUPLICATED count (auth keys it
destroyed for being used from two source addresses at once).

The anchor (bench/anchor.py): right after the service, the same shape of world (fresh
bots and channels in the same tgemu, full token buckets) posted by a plain Telethon
loop with the service's in-flight budget (hosts × workers × threads). The service's
delivery rate is printed as a ratio to it beside the ratio to the ceiling, and the CPU
each spent per post (the workers' processes and their render processes; the anchor's
process).

``--hosts K``: K stand-in hosts, 127.0.0.2, 127.0.0.3, …: ``--workers`` processes on
each, their Telegram connections bound to it (BOTMGR_TG_LOCAL_ADDR).

Two rates: end to end (first enqueue to last post sent: bounded by the API's enqueue
rate when that is the slower side), and delivery (first to last ``sent_at``: what the
workers and Telegram's limits achieve). ``--prequeue`` stops the workers while the posts
are enqueued and starts fresh ones after, so delivery is measured on a full queue.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from bench.anchor import AnchorFigures, run_anchor
from bench.common import report
from botmgr.models import Post
from botmgr.worker.app import make_celery
from tests.harness.env import settings_from
from tests.harness.flows import bound_channel, delivered, post, register_bot
from tests.harness.processes import WorkerProcess
from tests.harness.stack import ServiceStack, service_stack

BOT_RATE, BOT_BURST = 30.0, 30  # tgemu's (and Telegram's) per-bot message limit
CHANNEL_RATE, CHANNEL_BURST = 20 / 60, 10  # per channel: 20 a minute, burst 10


def ceiling(bots: int, channels: int, posts: int) -> tuple[float, float]:
    """(seconds, posts/s): the fastest the limits let K posts through."""
    per_channel = Counter(i % channels for i in range(posts))
    per_bot = Counter()
    for channel, n in per_channel.items():
        per_bot[channel % bots] += n
    seconds = max(
        [max(0, n - BOT_BURST) / BOT_RATE for n in per_bot.values()]
        + [max(0, n - CHANNEL_BURST) / CHANNEL_RATE for n in per_channel.values()]
    )
    return seconds, posts / seconds if seconds else float("inf")


async def setup(running: ServiceStack, bots: int, channels: int) -> list[dict]:
    assert running.api is not None and running.emu is not None
    emu, celery = running.emu, make_celery(settings_from(running.env))
    async with httpx.AsyncClient(
        base_url=running.api.url, auth=running.api.auth, timeout=120
    ) as api:
        made = [emu.create_bot() for _ in range(bots)]
        ids = [await register_bot(api, bot, alias="fleet") for bot in made]
        bound: list[dict] = []
        for start in range(0, channels, 16):
            batch = range(start, min(channels, start + 16))
            bound += await asyncio.gather(
                *(
                    bound_channel(
                        api, emu, celery, made[i % bots], ids[i % bots], title=f"Bench {i}"
                    )
                    for i in batch
                )
            )
    return bound


def restart_workers(running: ServiceStack, concurrency: int, stop: bool) -> None:
    if stop:
        for worker in running.workers:
            worker.stop()
        return
    running.workers[:] = [
        WorkerProcess(old.env, running.workdir / f"worker-drain-{n}.log", concurrency)
        for n, old in enumerate(running.workers)
    ]
    for worker in running.workers:
        worker.wait_ready()


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a live process and its live descendants (a
    worker's render processes), from /proc."""
    total = 0.0
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as children:
                total += sum(tree_cpu(int(child)) for child in children.read().split())
    except (FileNotFoundError, ProcessLookupError):
        pass  # ended meanwhile
    return total


def workers_cpu(running: ServiceStack) -> float:
    return sum(tree_cpu(worker.process.pid) for worker in running.workers)


async def run(
    running: ServiceStack, channels: list[dict], posts: int, concurrency: int, prequeue: bool
) -> dict:
    assert running.api is not None and running.emu is not None
    emu = running.emu
    if prequeue:
        restart_workers(running, concurrency, stop=True)
    before = emu.metrics()
    cpu_before = workers_cpu(running)
    engine = create_async_engine(running.env["BOTMGR_DATABASE_URL"])
    limits = httpx.Limits(max_connections=32)
    started = time.perf_counter()
    async with httpx.AsyncClient(
        base_url=running.api.url, auth=running.api.auth, timeout=60, limits=limits
    ) as api:

        async def enqueue(i: int) -> None:
            await post(api, channels[i % len(channels)]["id"], f"post *{i}*")

        for start in range(0, posts, 32):
            await asyncio.gather(*(enqueue(i) for i in range(start, min(posts, start + 32))))
    enqueued = time.perf_counter() - started
    if prequeue:
        await asyncio.to_thread(restart_workers, running, concurrency, False)
        cpu_before = workers_cpu(running)  # from ready on: not their start-up
    try:
        while True:
            async with AsyncSession(engine) as session:
                left = await session.scalar(
                    select(func.count()).select_from(Post).where(Post.status == "queued")
                )
            if not left:
                break
            await asyncio.sleep(0.1)
        finished = time.perf_counter() - started
        cpu = workers_cpu(running) - cpu_before
        async with AsyncSession(engine) as session:
            rows = (await session.execute(select(Post.random_id, Post.status))).all()
            first, last = (
                await session.execute(select(func.min(Post.sent_at), func.max(Post.sent_at)))
            ).one()
    finally:
        await engine.dispose()
    sent_ids = delivered(emu, channels)
    sent = {r for r, status in rows if status == "sent"}
    after = emu.metrics()
    return {
        "cpu_s": cpu,
        "enqueue_s": enqueued,
        "total_s": finished,
        "posts": len(rows),
        "delivery_s": (last - first).total_seconds() if first and last else 0.0,
        "sent": len(sent),
        "failed": sum(status == "failed" for _, status in rows),
        "duplicates": sum(n - 1 for n in sent_ids.values() if n > 1),
        "lost": len(sent - set(sent_ids)) + (posts - len(rows)),
        "unexpected": len(set(sent_ids) - sent),
        "flood_waits": after["flood_waits"] - before["flood_waits"],
        "auth_key_duplicated": after["auth_key_duplicated"] - before["auth_key_duplicated"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", type=int, default=20)
    parser.add_argument("--channels", type=int, default=200)
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="worker processes per host")
    parser.add_argument("--hosts", type=int, default=0, help="stand-in hosts 127.0.0.2, …")
    parser.add_argument("--prequeue", action="store_true")
    parser.add_argument("--no-anchor", action="store_true", help="skip the bare-client run")
    args = parser.parse_args()

    hosts = [f"127.0.0.{2 + n}" for n in range(args.hosts)]
    in_flight = max(1, len(hosts)) * args.workers * args.concurrency
    workdir = Path(tempfile.mkdtemp(prefix="botmgr-bench-posting-"))
    with service_stack(
        workdir,
        tgemu_args=["--latency-ms", str(args.latency_ms)],
        workers=args.workers,
        concurrency=args.concurrency,
        hosts=hosts,
    ) as running:
        channels = asyncio.run(setup(running, args.bots, args.channels))
        figures = asyncio.run(run(running, channels, args.posts, args.concurrency, args.prequeue))
        anchor = None
        if not args.no_anchor:
            restart_workers(running, args.concurrency, stop=True)  # the machine to itself
            assert running.emu is not None
            anchor = run_anchor(running.emu, args.bots, args.channels, args.posts, in_flight)
    limit_s, limit_rate = ceiling(args.bots, args.channels, args.posts)
    report(
        "Posting",
        {
            "bots × channels × posts": f"{args.bots} × {args.channels} × {args.posts}",
            "tgemu latency": f"{args.latency_ms} ms",
            "hosts × workers × threads": f"{len(hosts) or 1} × {args.workers} × "
            f"{args.concurrency} (in flight: {in_flight})",
            "prequeue": args.prequeue,
            "logs": str(workdir),
        },
        rows(figures, anchor, args.posts, limit_s, limit_rate),
        HEADER,
    )


HEADER = [
    "who",
    "delivery/s",
    "× anchor",
    "× ceiling",
    "CPU ms/post",
    "end-to-end/s",
    "delivery s",
    "ceiling s",
    "enqueue s",
    "sent",
    "failed",
    "flood waits",
    "AUTH_KEY_DUPLICATED",
    "duplicates",
    "lost",
]


def rows(
    figures: dict, anchor: AnchorFigures | None, posts: int, limit_s: float, limit_rate: float
) -> list[list[object]]:
    """The service's row and the anchor's: rates, ratios, CPU per post, faults."""
    delivery = (figures["posts"] - 1) / figures["delivery_s"] if figures["delivery_s"] else 0
    versus = f"{delivery / anchor.delivery:.2f}" if anchor and anchor.delivery else "–"
    table: list[list[object]] = [
        [
            "service",
            f"{delivery:.1f}",
            versus,
            f"{delivery / limit_rate:.2f}",
            f"{1000 * figures['cpu_s'] / max(1, figures['sent']):.2f}",
            f"{figures['posts'] / figures['total_s']:.1f}",
            f"{figures['delivery_s']:.2f}",
            f"{limit_s:.2f}",
            f"{figures['enqueue_s']:.2f}",
            figures["sent"],
            figures["failed"],
            figures["flood_waits"],
            figures["auth_key_duplicated"],
            figures["duplicates"],
            figures["lost"] + figures["unexpected"],
        ]
    ]
    if anchor is not None:
        table.append(
            [
                "bare Telethon",
                f"{anchor.delivery:.1f}",
                "1.00",
                f"{anchor.delivery / limit_rate:.2f}",
                f"{1000 * anchor.cpu_s / max(1, anchor.posts):.2f}",
                f"{anchor.posts / anchor.total_s:.1f}" if anchor.total_s else "–",
                f"{anchor.delivery_s:.2f}",
                f"{limit_s:.2f}",
                "–",
                anchor.posts,
                posts - anchor.posts,
                anchor.flood_waits,
                "–",
                anchor.duplicates,
                anchor.lost,
            ]
        )
    return table


if __name__ == "__main__":
    main()
