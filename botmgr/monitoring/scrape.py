"""What ``GET /metrics`` answers: the counters and histograms every process of this host
recorded (botmgr/metrics.py, added up over the group files of processes.py), and gauges
of the fleet's state read when Prometheus asks.

The fleet gauges cost one Redis pipeline (the length of the shared queue and of each
live worker's queue) and three small PostgreSQL statements (bots and bindings grouped
by status; queued posts over the partial index ``ix_posts_queued_due``), made at most
once every ``FLEET_TTL`` seconds per API process: scrapes in between, from several
Prometheus servers say, reuse the last reading. If PostgreSQL or Redis does not answer,
their gauges are left out of that scrape (``botmgr_fleet_gauges_up`` 0), the counters
are still served.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import text

from botmgr import metrics
from botmgr.fleet.keys import FleetKeys, worker_queue
from botmgr.monitoring import processes
from botmgr.tasks.names import QUEUE

log = logging.getLogger(__name__)
FLEET_TTL = 5.0
PROBE_TIMEOUT = 2.0
#: Every metric botmgr/metrics.py defines: a scrape announces each (HELP and TYPE) even
#: before its first sample, so dashboards and alerts find every name at once.
DEFINED: tuple[MetricWrapperBase, ...] = (
    metrics.POSTS,
    metrics.POST_LATENCY,
    metrics.TELEGRAM_CALLS,
    metrics.TELEGRAM_ERRORS,
    metrics.FLOOD_WAITS,
    metrics.FLOOD_WAIT_SECONDS,
    metrics.SWEEP_DURATION,
    metrics.COLLECTION_DURATION,
    metrics.WEBHOOK_DELIVERIES,
)

_COUNTS = text(
    "SELECT 'bots', status, count(*) FROM bots GROUP BY status "
    "UNION ALL SELECT 'bindings', status, count(*) FROM bindings GROUP BY status"
)
# Due: no later time stored, or that time has come. The age of the oldest due post is
# counted from when it became due (its not_before) or, sent at once, from its creation.
_POSTS = text(
    "SELECT count(*), "
    "count(*) FILTER (WHERE coalesce(not_before, created_at) <= now()), "
    "extract(epoch FROM now() - min(coalesce(not_before, created_at)) "
    "FILTER (WHERE coalesce(not_before, created_at) <= now())) "
    "FROM posts WHERE status = 'queued'"
)


@dataclass
class FleetReading:
    up: bool = False
    bots: dict[str, int] = field(default_factory=dict)
    bindings: dict[str, int] = field(default_factory=dict)
    posts_queued: int = 0
    posts_due: int = 0
    oldest_due_seconds: float = 0.0
    queue_depth: dict[str, int] = field(default_factory=dict)

    def families(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "botmgr_fleet_gauges_up", "1 if the fleet gauges below were read from the stores."
        )
        up.add_metric([], 1.0 if self.up else 0.0)
        yield up
        if not self.up:
            return
        for name, doc, values in (
            ("botmgr_bots", "Bots by status.", self.bots),
            ("botmgr_bindings", "Bindings by status.", self.bindings),
        ):
            family = GaugeMetricFamily(name, doc, labels=["status"])
            for status, count in sorted(values.items()):
                family.add_metric([status], float(count))
            yield family
        depth = GaugeMetricFamily(
            "botmgr_queue_depth",
            "Tasks waiting in the broker (queue: shared, or workers: the bots' owners' own).",
            labels=["queue"],
        )
        for queue, count in sorted(self.queue_depth.items()):
            depth.add_metric([queue], float(count))
        yield depth
        yield GaugeMetricFamily(
            "botmgr_posts_queued", "Posts not sent yet, scheduled ones included.", self.posts_queued
        )
        yield GaugeMetricFamily(
            "botmgr_posts_due", "Queued posts whose time has come.", self.posts_due
        )
        yield GaugeMetricFamily(
            "botmgr_oldest_due_post_age_seconds",
            "How long the oldest due post has been waiting (0: none waits).",
            self.oldest_due_seconds,
        )


async def _database(app: FastAPI, reading: FleetReading) -> None:
    async with app.state.reader.connect() as conn:
        for kind, status, count in await conn.execute(_COUNTS):
            (reading.bots if kind == "bots" else reading.bindings)[status] = int(count)
        queued, due, oldest = (await conn.execute(_POSTS)).one()
    reading.posts_queued, reading.posts_due = int(queued), int(due)
    reading.oldest_due_seconds = max(0.0, float(oldest or 0.0))


async def _broker(app: FastAPI, reading: FleetReading) -> None:
    keys = FleetKeys(app.state.settings.redis_prefix)
    redis = app.state.redis
    workers = [
        w.decode() if isinstance(w, bytes) else w for w in await redis.zrange(keys.workers, 0, -1)
    ]
    pipe = redis.pipeline(transaction=False)
    shared = keys.queue_lists(QUEUE)
    owned = [name for w in workers for name in keys.queue_lists(worker_queue(w))]
    for name in (*shared, *owned):
        pipe.llen(name)
    lengths = await pipe.execute()
    reading.queue_depth = {
        "shared": sum(lengths[: len(shared)]),
        "workers": sum(lengths[len(shared) :]),
    }


async def read_fleet(app: FastAPI) -> FleetReading:
    reading = FleetReading()
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            await _database(app, reading)
            await _broker(app, reading)
        reading.up = True
    except Exception as exc:  # a store down: the counters are still worth serving
        log.warning("metrics: fleet gauges unavailable (%s)", type(exc).__name__)
        reading = FleetReading()
    return reading


class FleetGauges:
    """The last reading, reused for ``ttl`` seconds; one reading at a time."""

    def __init__(self, ttl: float = FLEET_TTL) -> None:
        self.ttl = ttl
        self._reading: FleetReading | None = None
        self._until = 0.0
        self._lock = asyncio.Lock()

    async def get(self, app: FastAPI) -> FleetReading:
        async with self._lock:  # scrapes that arrive meanwhile take the same reading
            if self._reading is None or time.monotonic() >= self._until:
                self._reading = await read_fleet(app)
                self._until = time.monotonic() + self.ttl
            return self._reading


class _Collected:
    """A collector over already-made families."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def _merged(root: Path) -> list[Metric]:
    merge = MultiProcessCollector.merge
    return list(merge(processes.metric_files(root), accumulate=True))  # type: ignore[no-untyped-call]


def recorded(root: Path | None) -> list[Metric]:
    """The recorded metrics: every group's files under ``root`` added up, or this
    process's own (None: not in multiprocess mode); each defined name present."""
    if root is not None:
        try:
            families = _merged(root)
        except FileNotFoundError:  # a stale group swept between listing and reading
            families = _merged(root)
    else:
        families = [f for f in REGISTRY.collect() if f.name.startswith("botmgr_")]
    present = {f.name for f in families}
    for defined in DEFINED:
        for family in defined.describe():
            if family.name not in present:
                families.append(family)
    return families


def exposition(recorded_families: list[Metric], fleet: FleetReading) -> bytes:
    """The text format Prometheus reads."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collected([*recorded_families, *fleet.families()]))
    return generate_latest(registry)


async def render(app: FastAPI) -> bytes:
    fleet = await app.state.fleet_gauges.get(app)
    root = app.state.settings.metrics_dir if processes.in_group() else None
    # Reading the files is blocking I/O (page cache, but a file per process and kind).
    families = await asyncio.to_thread(recorded, root)
    return exposition(families, fleet)
