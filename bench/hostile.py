"""Hostile Markdown against a real API process: what each input costs, and what a stream
of them does to everyone else.

    nice -n 5 .venv/bin/python -m bench.hostile [--repeat 5] [--healthz 1000] [--posters 4]

One ``botmgr api`` process on a throwaway database with one channel bound (no worker:
an accepted post is only enqueued), reached on its own HTTP port. Every body is at most
64 KiB, what nginx lets through (``client_max_body_size 64k``).

1. Each input is posted ``--repeat`` times, one after the other: status, median and
   worst latency. Target: every one answered in < 100 ms.
2. GET /healthz, ``--healthz`` requests one after the other, first alone (the anchor),
   then while ``--posters`` connections post the same inputs non-stop from another
   process: p50 and p99, and each as a ratio to the anchor. Target: p99 < 50 ms.

``--loop-lag SECONDS`` measures instead, in this process, what rendering does to an event
loop: in threads versus in the render processes (the choice of posts/renderer.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from bench.common import report
from botmgr.models import Binding, BindingStatus, Channel
from botmgr.posts import renderer
from botmgr.posts.markdown import render
from tests.harness.db import fresh_database, insert_bot
from tests.harness.env import scoped_env, settings_from
from tests.harness.processes import ApiProcess

CHANNEL_TG_ID = 1_234_567_891
KIB = 1024
BODY_LIMIT = 64 * KIB  # nginx.conf's client_max_body_size


def filled(unit: str, size: int) -> str:
    return (unit * (size // len(unit.encode()) + 1))[:size]


def _inputs() -> dict[str, str]:
    """name → Markdown: the worst found for each way the converter costs (a legitimate
    post first, for scale)."""
    sized: dict[str, Callable[[int], str]] = {
        "deep lists `- - - x`": lambda n: filled("- ", n - 1) + "x",
        "deep ordered lists `1. 1. x`": lambda n: filled("1. ", n - 1) + "x",
        "deep quotes `> > x`": lambda n: filled("> ", n - 1) + "x",
        "lists in quotes `> - > - x`": lambda n: filled("> - ", n - 1) + "x",
        "emphasis `*a*a…`": lambda n: filled("*a", n),
        "emphasis `_a_a…`": lambda n: filled("_a", n),
        "nested emphasis `*a **b ***c`": lambda n: filled("*a **b ***c ", n),
        "links `[a](b)…`": lambda n: filled("[a](b)", n),
        "brackets `[[[…`": lambda n: "[" * n,
        "open links `[a](…`": lambda n: filled("[a](", n),
        "images `![a](b)…`": lambda n: filled("![a](b)", n),
        "backticks": lambda n: "`" * n,
        "code spans `` `a`` ``": lambda n: filled("`a``", n),
        "HTML-ish `<a <a`": lambda n: filled("<a ", n),
        "empty fences ```` ``` ````": lambda n: filled("```\n", n),
        "empty math `$$$$`": lambda n: filled("$$$$\n\n", n),
        "headings `# a`": lambda n: filled("# a\n", n),
        "empty headings `#`": lambda n: filled("#\n", n),
        "spoilers `||a`": lambda n: filled("||a", n),
        "wide table": lambda n: "|" + "a|" * (n // 4 - 1) + "\n|" + "-|" * (n // 4 - 1) + "\n",
        "padded table": lambda n: "|" + "a" * (n // 2 - 8) + "|\n|-|\n" + "x\n" * (n // 4),
    }
    inputs = {
        "a legitimate post": "**Release 1.2** is out: [notes](https://example.com/r/1.2)\n\n"
        "- faster _sends_\n- `--dry-run`\n\n> thanks to everyone who tested it",
        "the issue's `- ` × 20000 + `x`": "- " * 20000 + "x",
    }
    for name, make in sized.items():
        inputs[f"{name}, 16 KiB"] = make(16 * KIB)
    for name in ("deep lists `- - - x`", "emphasis `*a*a…`", "links `[a](b)…`", "padded table"):
        size = BODY_LIMIT
        while len(body(sized[name](size))) > BODY_LIMIT:  # JSON escapes newlines
            size -= 64
        inputs[f"{name}, 64 KiB"] = sized[name](size)
    return inputs


def body(markdown: str) -> bytes:
    return json.dumps({"channel_id": CHANNEL_TG_ID, "message": markdown}).encode()


INPUTS = _inputs()


async def seed(env: dict[str, str]) -> None:
    engine = create_async_engine(env["BOTMGR_DATABASE_URL"])
    async with AsyncSession(engine, expire_on_commit=False) as session:
        bot = await insert_bot(session, settings_from(env))
        channel = Channel(tg_id=CHANNEL_TG_ID, title="Hostile", reference="hostile")
        session.add(channel)
        await session.flush()
        session.add(Binding(bot_id=bot.id, channel_id=channel.id, status=BindingStatus.active))
        await session.commit()
    await engine.dispose()


def post(client: httpx.Client, data: bytes) -> tuple[int, float]:
    start = time.perf_counter()
    response = client.post("/messages", content=data, headers={"Content-Type": "application/json"})
    return response.status_code, (time.perf_counter() - start) * 1000


def each_input(client: httpx.Client, repeat: int) -> list[list[Any]]:
    rows = []
    for name, markdown in INPUTS.items():
        data = body(markdown)
        assert len(data) <= BODY_LIMIT, name
        answers = [post(client, data) for _ in range(repeat)]
        statuses = sorted({status for status, _ in answers})
        latencies = [ms for _, ms in answers]
        rows.append(
            [
                name,
                f"{len(markdown.encode()):,}",
                "/".join(map(str, statuses)),
                round(statistics.median(latencies), 1),
                round(max(latencies), 1),
            ]
        )
    return rows


def healthz(client: httpx.Client, count: int) -> tuple[float, float]:
    latencies = []
    for _ in range(count):
        start = time.perf_counter()
        assert client.get("/healthz").status_code == 200
        latencies.append((time.perf_counter() - start) * 1000)
    cuts = statistics.quantiles(latencies, n=100)
    return cuts[49], cuts[98]


def stream(url: str, auth: tuple[str, str], posters: int, stop: Any, out: Any) -> None:
    """The hostile stream (in its own process): every input, round and round."""
    bodies = [body(markdown) for name, markdown in INPUTS.items() if "legitimate" not in name]
    counts: Counter[int] = Counter()
    lock = threading.Lock()

    def poster(offset: int) -> None:
        with httpx.Client(base_url=url, auth=auth, timeout=60) as client:
            n = offset
            while not stop.is_set():
                status, _ = post(client, bodies[n % len(bodies)])
                n += 1
                with lock:
                    counts[status] += 1

    threads = [threading.Thread(target=poster, args=(i * 7,)) for i in range(posters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put(dict(counts))


async def _tick(lags: list[float], end: float) -> None:
    while time.perf_counter() < end:
        start = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append((time.perf_counter() - start - 0.001) * 1000)


async def loop_lag(seconds: float) -> list[list[Any]]:
    """How late a 1 ms sleep wakes up on an event loop that renders the heaviest inputs
    that pass the bounds, 4 at a time: in threads (``asyncio.to_thread``, the budget
    only a wait_for) or in the render processes (``render_bounded``)."""
    heavy = [INPUTS[f"{name}, 16 KiB"] for name in ("headings `# a`", "emphasis `*a*a…`")]
    heavy += [INPUTS["links `[a](b)…`, 16 KiB"], INPUTS["empty headings `#`, 16 KiB"]]
    await renderer.render_bounded("warm")

    async def one(how: str, markdown: str) -> None:
        with contextlib.suppress(ValueError):
            if how == "thread":
                await asyncio.wait_for(asyncio.to_thread(render, markdown), 1.0)
            else:
                await renderer.render_bounded(markdown)

    rows = []
    for how in ("none", "thread", "process"):
        lags: list[float] = []
        renders = 0
        end = time.perf_counter() + seconds

        ticker = asyncio.ensure_future(_tick(lags, end))
        while how != "none" and time.perf_counter() < end:
            await asyncio.gather(*(one(how, markdown) for markdown in heavy))
            renders += len(heavy)
        await ticker
        cuts = statistics.quantiles(lags, n=100)
        rows.append([how, renders, round(cuts[49], 2), round(cuts[98], 2), round(max(lags), 1)])
    renderer.shutdown()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--healthz", type=int, default=1000, help="requests per measurement")
    parser.add_argument("--posters", type=int, default=4)
    parser.add_argument(
        "--loop-lag", type=float, metavar="SECONDS", help="only: threads vs render processes"
    )
    args = parser.parse_args()
    if args.loop_lag:
        report(
            "Event-loop lag while rendering: threads vs render processes",
            {"renders in flight": 4},
            asyncio.run(loop_lag(args.loop_lag)),
            ["rendered in", "renders", "lag p50 ms", "lag p99 ms", "lag max ms"],
        )
        return

    workdir = Path(tempfile.mkdtemp(prefix="botmgr-bench-hostile-"))
    with fresh_database() as url, scoped_env(url, BOTMGR_DEV="1") as env:
        asyncio.run(seed(env))
        api = ApiProcess(env, workdir / "api.log", loglevel="WARNING")
        try:
            api.wait_ready()
            with httpx.Client(base_url=api.url, auth=api.auth, timeout=60) as client:
                post(client, body("warm **up**"))
                rows = each_input(client, args.repeat)
                anchor = healthz(client, args.healthz)
                context = multiprocessing.get_context("spawn")
                stop, out = context.Event(), context.Queue()
                poster = context.Process(
                    target=stream, args=(api.url, api.auth, args.posters, stop, out)
                )
                poster.start()
                time.sleep(1.0)  # the stream is flowing
                started = time.perf_counter()
                during = healthz(client, args.healthz)
                seconds = time.perf_counter() - started
                stop.set()
                counts = out.get(timeout=120)
                poster.join(timeout=60)
        finally:
            api.stop()
    worst = max(row[4] for row in rows)
    report(
        "Hostile Markdown: each input, POST /messages",
        {
            "repetitions per input": args.repeat,
            "target": f"every answer < 100 ms: {'met' if worst < 100 else 'MISSED'} "
            f"(worst {worst} ms)",
            "logs": str(workdir),
        },
        rows,
        ["input", "bytes", "status", "median ms", "max ms"],
    )
    sent = sum(counts.values())
    report(
        "Hostile Markdown: GET /healthz during a stream of them",
        {
            "stream": f"{args.posters} connections, {sent} posts in ~{seconds:.1f} s "
            f"({sent / seconds:.0f}/s), statuses {dict(sorted(counts.items()))}",
            "target": f"/healthz p99 < 50 ms during the stream: "
            f"{'met' if during[1] < 50 else 'MISSED'}",
        },
        [
            ["alone (anchor)", round(anchor[0], 2), round(anchor[1], 2), "1.00", "1.00"],
            [
                "during the hostile stream",
                round(during[0], 2),
                round(during[1], 2),
                f"{during[0] / anchor[0]:.2f}",
                f"{during[1] / anchor[1]:.2f}",
            ],
        ],
        ["GET /healthz", "p50 ms", "p99 ms", "p50 × anchor", "p99 × anchor"],
    )


if __name__ == "__main__":
    main()
