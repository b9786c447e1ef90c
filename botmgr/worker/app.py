"""The Celery application: configuration shared by the API (which only sends tasks, by
name) and the worker (which also registers them and owns the event loop).

Delivery is at-least-once: ``task_acks_late`` + ``task_reject_on_worker_lost`` put a task
back when the worker dies mid-way, and Redis hands an unacknowledged task out again
after ``BOTMGR_CELERY_VISIBILITY_TIMEOUT`` seconds. Tasks are written to be re-run.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.backends.redis import RedisBackend
from celery.signals import task_postrun, task_prerun, worker_init, worker_shutdown

from botmgr.settings import Settings
from botmgr.tasks.names import QUEUE
from botmgr.worker.schedules import BEAT_LOCK_TIMEOUT, BEAT_MAX_LOOP_INTERVAL


class PollingRedisBackend(RedisBackend):
    """For senders that read task state by polling and never block on a result (the
    API): skips the pub/sub subscription Celery opens for every task sent, which costs a
    round trip per task and hangs for a long time when Redis is down."""

    def on_task_call(self, producer: Any, task_id: str) -> None:
        return None


def make_celery(settings: Settings, *, polling: bool = False) -> Celery:
    backend = (
        f"{__name__}:PollingRedisBackend+{settings.redis_url}" if polling else settings.redis_url
    )
    app = Celery("botmgr", broker=settings.redis_url, backend=backend, set_as_current=False)
    prefix = settings.redis_prefix
    redis_timeout = settings.redis_timeout_seconds
    app.conf.update(
        broker_transport_options={
            "global_keyprefix": prefix,
            "visibility_timeout": settings.celery_visibility_timeout,
            # Sweep for tasks of dead workers at least every half timeout (≤ 60 s); by
            # default kombu only looks every ~100 s.
            "unacked_restore_interval": max(1, min(60, settings.celery_visibility_timeout // 2)),
            "unacked_restore_throttle": 1,
            # A Redis that stops answering (not refusing) must fail a publish, not hang
            # it: every broker round trip gives up after BOTMGR_REDIS_TIMEOUT_SECONDS
            # (kombu waits forever by default). Above brpop_timeout (1 s), so a worker's
            # idle BRPOP is never cut.
            "socket_timeout": redis_timeout,
            "socket_connect_timeout": redis_timeout,
        },
        broker_connection_timeout=redis_timeout,
        result_backend_transport_options={"global_keyprefix": prefix},
        redis_socket_timeout=redis_timeout,
        redis_socket_connect_timeout=redis_timeout,
        broker_connection_retry_on_startup=True,
        task_default_queue=QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=True,
        # Only state and result are ever read (tasks/answers.py): the name, arguments,
        # worker and queue of every task were encoded and stored for nobody.
        result_extended=False,
        result_expires=7 * 24 * 3600,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        timezone=settings.timezone,
        enable_utc=True,
        worker_hijack_root_logger=False,
        redbeat_redis_url=settings.redis_url,
        redbeat_key_prefix=f"{prefix}redbeat:",
        # Not the broker's transport options: only what redis-py's client takes.
        redbeat_redis_options={
            "socket_timeout": redis_timeout,
            "socket_connect_timeout": redis_timeout,
        },
        redbeat_lock_timeout=BEAT_LOCK_TIMEOUT,
        beat_max_loop_interval=BEAT_MAX_LOOP_INTERVAL,
        beat_scheduler="botmgr.worker.schedules:Scheduler",
        botmgr_settings=settings,
    )
    return app


def create_worker_app(settings: Settings, worker_id: str | None = None) -> Celery:
    """The worker's app: tasks registered, event loop started with the worker.
    ``worker_id`` names the process in the fleet; its own queue is
    fleet.keys.worker_queue(worker_id), which the worker must consume too."""
    from botmgr.monitoring import logs
    from botmgr.uow import BOT_HEADER
    from botmgr.worker import tasks
    from botmgr.worker.runtime import WorkerRuntime

    logs.hide_settings(settings)
    app = make_celery(settings)
    runtime = WorkerRuntime(settings, app, worker_id)
    tasks.register(app, runtime)

    def _start(**_: Any) -> None:
        runtime.start()

    def _stop(**_: Any) -> None:
        runtime.stop()

    # The task's records carry its id and bot, in its thread and (the context is
    # copied) in its coroutine on the event loop.
    def _task_starts(task_id: str | None = None, task: Any = None, **_: Any) -> None:
        logs.enter_task(task_id, tasks.header_of(task, BOT_HEADER))

    def _task_ends(**_: Any) -> None:
        logs.leave_task()

    # weak=False: the handlers are closures that would otherwise be collected.
    worker_init.connect(_start, weak=False)
    worker_shutdown.connect(_stop, weak=False)
    task_prerun.connect(_task_starts, weak=False)
    task_postrun.connect(_task_ends, weak=False)
    return app
