"""The fleet across two "hosts": a worker SIGKILLed and one added mid-run, at full size.

    .venv/bin/python -m bench.fleet [--bots 50] [--channels-per-bot 4] [--posts 5000]
        [--processes 2] [--concurrency 16] [--latency-ms 50]

Two hosts (Telegram connections from 127.0.0.2 and 127.0.0.3: tgemu destroys any auth
key used from both at once, as Telegram does) with ``--processes`` worker processes each,
one Redis, one PostgreSQL, one tgemu (rate limits and every strict rule on). Bots ×
channels bound through the API, then the posts enqueued through it, round robin over the
channels; halfway, a worker holding bots is SIGKILLed and a new one started on the first
host (tests/harness/fleet.kill_and_join, the run the resilience test makes small).
Counted: posts sent, copies in tgemu per random_id (duplicates, losses), flood waits
tgemu answered, auth keys it destroyed as AUTH_KEY_DUPLICATED, the bots each worker held
before the kill and the joined worker's at the end; the run's time beside the ceiling
Telegram's limits allow for the same posts (a lower bound: it ignores the enqueue).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections import Counter
from pathlib import Path

import asyncpg

from bench.common import report
from bench.posting import BOT_BURST, BOT_RATE, CHANNEL_BURST, CHANNEL_RATE
from botmgr.db import API_OVERFLOW, API_POOL, worker_pool_size
from botmgr.settings import Settings
from tests.harness.env import PG_ADMIN_DSN
from tests.harness.fleet import HOSTS, bots_held, kill_and_join, start_worker
from tests.harness.flows import delivered
from tests.harness.stack import service_stack


def ceiling_s(bots: int, per_bot: int, posts: int) -> float:
    """Seconds the limits need at least: channel i belongs to bot i // per_bot (as
    harness.flows.fleet binds them), post j goes to channel j % channels."""
    channels = bots * per_bot
    per_channel = Counter(j % channels for j in range(posts))
    per_bot_posts: Counter[int] = Counter()
    for channel, n in per_channel.items():
        per_bot_posts[channel // per_bot] += n
    return max(
        [max(0, n - BOT_BURST) / BOT_RATE for n in per_bot_posts.values()]
        + [max(0, n - CHANNEL_BURST) / CHANNEL_RATE for n in per_channel.values()]
    )


async def max_connections() -> int:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        return int(await conn.fetchval("SHOW max_connections"))
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", type=int, default=50)
    parser.add_argument("--channels-per-bot", type=int, default=4)
    parser.add_argument("--posts", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=2, help="worker processes per host")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-ms", type=int, default=50)
    args = parser.parse_args()
    # Every worker's pool may fill (threads + fleet gate + gateway writes) and the API's:
    # past PostgreSQL's max_connections, requests fail with 53300 (too many connections).
    workers = args.processes * len(HOSTS) + 1
    settings = Settings(_env_file=None, dev=True)
    need = workers * worker_pool_size(args.concurrency, settings.sweep_db_sessions)
    need += API_POOL + API_OVERFLOW
    have = asyncio.run(max_connections())
    if have < need + 10:
        raise SystemExit(
            f"PostgreSQL's max_connections is {have}; this run may open {need} connections: "
            "ALTER SYSTEM SET max_connections = ... and restart it, or lower --concurrency"
        )

    workdir = Path(tempfile.mkdtemp(prefix="botmgr-bench-fleet-"))
    with service_stack(
        workdir, tgemu_args=["--latency-ms", str(args.latency_ms)], BOTMGR_POST_MAX_RETRIES="20"
    ) as running:
        assert running.emu is not None
        workers = [
            start_worker(running, n, HOSTS[n % len(HOSTS)], args.concurrency)
            for n in range(args.processes * len(HOSTS))
        ]
        for worker in workers:
            worker.wait_ready()
        floods_before = running.emu.metrics()["flood_waits"]
        seen = asyncio.run(
            kill_and_join(
                running,
                workers,
                bots=args.bots,
                channels_per_bot=args.channels_per_bot,
                posts=args.posts,
                within=1800,
                concurrency=args.concurrency,
                parallel=16,
            )
        )
        copies = delivered(running.emu, seen.channels)
        metrics = running.emu.metrics()
        held_after = bots_held(running)
    assert seen.victim is not None and seen.joined is not None
    bound = ceiling_s(args.bots, args.channels_per_bot, args.posts)
    before = ", ".join(str(n) for n in sorted(seen.held.values(), reverse=True))
    after = ", ".join(str(n) for n in sorted(held_after.values(), reverse=True))
    report(
        "Fleet: two hosts, a worker killed and one added mid-run",
        {
            "bots × channels × posts": f"{args.bots} × {args.bots * args.channels_per_bot}"
            f" × {args.posts}",
            "hosts × worker processes × threads": f"{len(HOSTS)} × {args.processes}"
            f" × {args.concurrency}",
            "tgemu latency": f"{args.latency_ms} ms",
            "bots held before the kill": f"{before} (the victim: "
            f"{seen.held[seen.victim.process.pid]})",
            "bots held at the end": f"{after} (the joined worker: {seen.joined_held} when "
            "every post was sent)",
            "logs": str(workdir),
        },
        [
            [
                args.posts,
                sum(1 for n in copies.values() if n),
                sum(n - 1 for n in copies.values() if n > 1),
                args.posts - len(copies),
                metrics["flood_waits"] - floods_before,
                metrics["auth_key_duplicated"],
                f"{seen.enqueue_s:.1f}",
                f"{seen.run_s:.1f}",
                f"{bound:.1f}",
                f"{bound / seen.run_s:.2f}",
            ]
        ],
        [
            "posts",
            "delivered",
            "duplicates",
            "lost",
            "flood waits",
            "AUTH_KEY_DUPLICATED",
            "enqueue s",
            "run s",
            "ceiling s",
            "ceiling / run",
        ],
    )


if __name__ == "__main__":
    main()
