"""The service's Prometheus metrics: every counter and histogram a process records.

Shared by every process of a host: ``botmgr api`` and ``botmgr worker`` switch
prometheus-client into multiprocess mode (botmgr/monitoring/processes.py) before this
module is first imported, so each process writes its values into memory-mapped files
under ``BOTMGR_METRICS_DIR`` and ``GET /metrics`` adds them up. A process that never
enters that mode (an in-process test app, a benchmark) keeps them in its own memory.

The gauges that describe the state of the fleet (queue depth, the oldest due post, bots
and bindings by status) are not here: they are read from Redis and PostgreSQL when
Prometheus scrapes (monitoring/scrape.py), never kept up to date per event.

Recording is cheap on purpose (docs/PERFORMANCE.md, "Metrics"): a post costs a few
label lookups and mmap writes, measured by ``bench/metrics_cost.py``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from prometheus_client import Counter, Histogram
from sqlalchemy import event
from sqlalchemy.orm import Session, object_session

T = TypeVar("T")

POSTS = Counter(
    "botmgr_posts",
    "Posts that reached a status: sent, failed, cancelled, deleted.",
    ["status"],
)
POST_LATENCY = Histogram(
    "botmgr_post_latency_seconds",
    "From a post's enqueue (its creation, or its send_at when scheduled) to sent.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
)
TELEGRAM_CALLS = Counter(
    "botmgr_telegram_calls",
    "Requests sent to Telegram, by TL method (messages.sendMessage, ...).",
    ["method"],
)
TELEGRAM_ERRORS = Counter(
    "botmgr_telegram_errors",
    "Requests Telegram refused or that failed on the way, by method and error name.",
    ["method", "error"],
)
FLOOD_WAITS = Counter(
    "botmgr_telegram_flood_waits",
    "FLOOD_WAIT answers of Telegram, by method.",
    ["method"],
)
FLOOD_WAIT_SECONDS = Counter(
    "botmgr_telegram_flood_wait_seconds",
    "Seconds Telegram asked to wait in its FLOOD_WAIT answers, by method.",
    ["method"],
)
_LONG_JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
SWEEP_DURATION = Histogram(
    "botmgr_sweep_duration_seconds",
    "One worker's run of a rights sweep (kind: active, new, share).",
    ["kind"],
    buckets=_LONG_JOB_BUCKETS,
)
COLLECTION_DURATION = Histogram(
    "botmgr_stats_collection_duration_seconds",
    "One worker's run of a statistics collection (kind: all, channel).",
    ["kind"],
    buckets=_LONG_JOB_BUCKETS,
)
#: Recorded by the webhook dispatcher: event (post.sent, ...), outcome (delivered,
#: failed, retrying, ...).
WEBHOOK_DELIVERIES = Counter(
    "botmgr_webhook_deliveries",
    "Webhook delivery attempts, by event and outcome.",
    ["event", "outcome"],
)

# ----------------------------------------------------------------------- posts
_PENDING = "botmgr_metrics_pending"


def post_status(post: Any, status: str) -> None:
    """Count ``post`` reaching ``status`` (and a send's latency) once its transaction
    commits: a rolled-back attempt, retried later, is not counted twice."""
    record = _post_recorder(post, status)
    session = object_session(post)
    if session is None:  # not from a session: nothing to wait for
        record()
        return
    session.info.setdefault(_PENDING, []).append(record)


def _post_recorder(post: Any, status: str) -> Callable[[], None]:
    latency: float | None = None
    if status == "sent" and post.sent_at is not None:
        created: datetime | None = post.created_at
        send_at: datetime | None = post.send_at
        enqueued = max((t for t in (created, send_at) if t is not None), default=None)
        if enqueued is not None:
            latency = max(0.0, (post.sent_at - enqueued).total_seconds())

    def record() -> None:
        POSTS.labels(status).inc()
        if latency is not None:
            POST_LATENCY.observe(latency)

    return record


@event.listens_for(Session, "after_commit")
def _record_committed(session: Session) -> None:
    for record in session.info.pop(_PENDING, ()):
        record()


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session: Session, previous_transaction: object) -> None:
    session.info.pop(_PENDING, None)


# -------------------------------------------------------------------- Telegram
_DIGITS = re.compile(r"\d+")


def method_of(request: object) -> str:
    """A TL request's method as Telegram names it (``messages.sendMessage``)."""
    if isinstance(request, list | tuple):
        return "batch"
    cls = type(request)
    method = _METHODS.get(cls)
    if method is None:
        # Telethon's functions.messages.SendMessageRequest is messages.sendMessage.
        name = cls.__name__.removesuffix("Request")
        name = name[:1].lower() + name[1:]
        namespace = cls.__module__.rpartition(".functions")[2].lstrip(".")
        method = _METHODS[cls] = f"{namespace}.{name}" if namespace else name
    return method


_METHODS: dict[type, str] = {}


def telegram_call(
    method: str, error: str | None = None, flood_seconds: float | None = None
) -> None:
    """One request to Telegram; ``error``: its error's NAME (digits folded into X, so
    FILE_PART_3_MISSING stays one series); ``flood_seconds``: a FLOOD_WAIT's wait."""
    TELEGRAM_CALLS.labels(method).inc()
    if error is not None:
        TELEGRAM_ERRORS.labels(method, _DIGITS.sub("X", error)).inc()
    if flood_seconds is not None:
        FLOOD_WAITS.labels(method).inc()
        FLOOD_WAIT_SECONDS.labels(method).inc(flood_seconds)


# ------------------------------------------------------------------- long jobs
async def timed(histogram: Histogram, kind: str, work: Awaitable[T]) -> T:
    """Await ``work``, observing its wall time in ``histogram`` (labelled ``kind``)."""
    started = time.perf_counter()
    try:
        return await work
    finally:
        histogram.labels(kind).observe(time.perf_counter() - started)
