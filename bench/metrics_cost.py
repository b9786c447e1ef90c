"""What the metrics cost a sent post, and what a scrape costs, in multiprocess mode (as
``botmgr worker`` and ``botmgr api`` run them).

Per post the worker records: the send request (``MeteredClient._call``: the method's
name, one counter — ``telegram_call``), the post's status once its transaction commits
(``post_status``: a closure kept on the session, a counter and the latency histogram,
run by the ``after_commit`` listener). This times those steps on a post-like object,
``--posts`` times, against the same steps doing nothing, and a scrape
(``scrape.recorded``: merging the files of ``--processes`` processes).

    python -m bench.metrics_cost [--posts 200000] [--processes 8]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import machine, table
from botmgr.models import Post
from botmgr.monitoring import processes

# A process of the group that records ``n`` posts, to give a scrape files to merge.
_RECORDER = """
import sys
from datetime import UTC, datetime
from botmgr import metrics
from botmgr.models import Post
now = datetime.now(UTC)
post = Post(sent_at=now, created_at=now, send_at=None)
for _ in range(int(sys.argv[1])):
    metrics.telegram_call("messages.sendMessage")
    metrics.post_status(post, "sent")
"""


def per_post_us(posts: int) -> tuple[float, float]:
    """µs a post spends recording its metrics, and on the empty loop around them."""
    from telethon import functions

    from botmgr import metrics

    request = functions.messages.SendMessageRequest(peer=None, message="x")
    now = datetime.now(UTC)
    # A transient row: not in a session, so recorded at once (as at its commit).
    post = Post(sent_at=now, created_at=now - timedelta(seconds=1), send_at=None)

    started = time.perf_counter()
    for _ in range(posts):
        metrics.telegram_call(metrics.method_of(request))
        metrics.post_status(post, "sent")
    recorded = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(posts):
        pass
    empty = time.perf_counter() - started
    return recorded / posts * 1e6, empty / posts * 1e6


def scrape_ms(root: Path, procs: int) -> float:
    """ms to merge the group files of ``procs`` more processes (each a few series)."""
    env = {**os.environ}  # they join this process's group (inherited variables)
    for _ in range(procs):
        subprocess.run([sys.executable, "-c", _RECORDER, "100"], env=env, check=True)
    from botmgr.monitoring.scrape import recorded

    started = time.perf_counter()
    for _ in range(20):
        recorded(root)
    return (time.perf_counter() - started) / 20 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=200_000)
    parser.add_argument("--processes", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        root = Path(tmp)
        processes.enter_group(root, "bench")  # before prometheus-client is imported
        recorded_us, empty_us = per_post_us(args.posts)
        merge_ms = scrape_ms(root, args.processes)
    for key, value in machine().items():
        print(f"{key}: {value}")
    print(
        table(
            [
                ["metrics of one post (send counted + status + latency)", f"{recorded_us:.2f} µs"],
                ["the empty loop around it", f"{empty_us:.3f} µs"],
                [f"a scrape's merge of {args.processes + 1} processes", f"{merge_ms:.2f} ms"],
            ],
            ["what", "cost"],
        )
    )


if __name__ == "__main__":
    main()
