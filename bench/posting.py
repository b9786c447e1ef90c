"""Posting throughput against Telegram's flood limits, and exactly-once delivery.

    .venv/bin/python -m bench.posting [--bots 20] [--channels 200] [--posts 2000]
        [--latency-ms 50] [--concurrency 16] [--workers 1] [--prequeue]

N bots × M channels in tgemu (rate limits on: per bot 30 msg/s with a burst of 30, per
channel 20/min with a burst of 10), every channel bound to one bot (round robin) and
active; K posts enqueued through the API (POST /messages), spread round robin over the
channels. Measured: sustained posts/s from the first enqueue to the last post sent, the
ceiling the limits allow for this N, M, K (token buckets start full: a bucket of burst b
and rate r passes n messages in max(0, n − b) / r seconds; the slowest bucket bounds the
run), their ratio, flood waits tgemu answered, and duplicates / losses by random_id
against tgemu's stored messages.

Two rates: end to end (first enqueue to last post sent: bounded by the API's enqueue
rate when that is the slower side), and delivery (first to last ``sent_at``: what the
workers and Telegram's limits achieve). ``--prequeue`` stops the workers while the posts
are enqueued and starts fresh ones after, so delivery is measured on a full queue.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

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
    count = len(running.workers)
    running.workers[:] = [
        WorkerProcess(running.env, running.workdir / f"worker-drain-{n}.log", concurrency)
        for n in range(count)
    ]
    for worker in running.workers:
        worker.wait_ready()


async def run(
    running: ServiceStack, channels: list[dict], posts: int, concurrency: int, prequeue: bool
) -> dict:
    assert running.api is not None and running.emu is not None
    emu = running.emu
    if prequeue:
        restart_workers(running, concurrency, stop=True)
    floods_before = emu.metrics()["flood_waits"]
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
        async with AsyncSession(engine) as session:
            rows = (await session.execute(select(Post.random_id, Post.status))).all()
            first, last = (
                await session.execute(select(func.min(Post.sent_at), func.max(Post.sent_at)))
            ).one()
    finally:
        await engine.dispose()
    sent_ids = delivered(emu, channels)
    sent = {r for r, status in rows if status == "sent"}
    return {
        "enqueue_s": enqueued,
        "total_s": finished,
        "posts": len(rows),
        "delivery_s": (last - first).total_seconds() if first and last else 0.0,
        "sent": len(sent),
        "failed": sum(status == "failed" for _, status in rows),
        "duplicates": sum(n - 1 for n in sent_ids.values() if n > 1),
        "lost": len(sent - set(sent_ids)) + (posts - len(rows)),
        "unexpected": len(set(sent_ids) - sent),
        "flood_waits": emu.metrics()["flood_waits"] - floods_before,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", type=int, default=20)
    parser.add_argument("--channels", type=int, default=200)
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--prequeue", action="store_true")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="botmgr-bench-posting-"))
    with service_stack(
        workdir,
        tgemu_args=["--latency-ms", str(args.latency_ms)],
        workers=args.workers,
        concurrency=args.concurrency,
    ) as running:
        channels = asyncio.run(setup(running, args.bots, args.channels))
        figures = asyncio.run(run(running, channels, args.posts, args.concurrency, args.prequeue))
    limit_s, limit_rate = ceiling(args.bots, args.channels, args.posts)
    rate = figures["posts"] / figures["total_s"]
    delivery = (figures["posts"] - 1) / figures["delivery_s"] if figures["delivery_s"] else 0
    report(
        "Posting",
        {
            "bots × channels × posts": f"{args.bots} × {args.channels} × {args.posts}",
            "tgemu latency": f"{args.latency_ms} ms",
            "workers × threads": f"{args.workers} × {args.concurrency}",
            "prequeue": args.prequeue,
            "logs": str(workdir),
        },
        [
            [
                f"{rate:.1f}",
                f"{delivery:.1f}",
                f"{limit_rate:.1f}",
                f"{delivery / limit_rate:.2f}",
                f"{figures['total_s']:.2f}",
                f"{figures['delivery_s']:.2f}",
                f"{limit_s:.2f}",
                f"{figures['enqueue_s']:.2f}",
                figures["sent"],
                figures["failed"],
                figures["flood_waits"],
                figures["duplicates"],
                figures["lost"] + figures["unexpected"],
            ]
        ],
        [
            "end-to-end/s",
            "delivery/s",
            "ceiling/s",
            "delivery ratio",
            "run s",
            "delivery s",
            "ceiling s",
            "enqueue s",
            "sent",
            "failed",
            "flood waits",
            "duplicates",
            "lost",
        ],
    )


if __name__ == "__main__":
    main()
