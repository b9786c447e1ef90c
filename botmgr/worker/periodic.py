"""The periodic jobs' Celery tasks (beat enqueues them; the console and the CLI can run
them now). A sweep's share that Telegram asked to wait (FLOOD_WAIT) is enqueued again
with a countdown, on its own: the rest of the sweep is not held up by it."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from celery import Celery, Task

from botmgr.bots import service as bots
from botmgr.channels import checks
from botmgr.db import task_session
from botmgr.errors import Conflict, NotFound
from botmgr.models import BindingStatus
from botmgr.settings import Settings
from botmgr.stats import collect
from botmgr.tasks import results
from botmgr.tasks.results import RetryLater, TaskResult
from botmgr.telegram.gateway import FloodWait, TelegramUnavailable
from botmgr.worker.app import (
    CHECK_ACTIVE,
    CHECK_BINDINGS,
    CHECK_BOT,
    CHECK_NEW,
    COLLECT_CHANNEL_STATS,
    COLLECT_STATS,
)
from botmgr.worker.loop import WorkerRuntime

log = logging.getLogger(__name__)
LIVE = (BindingStatus.new, BindingStatus.active)


def register(app: Celery, runtime: WorkerRuntime, settings: Settings) -> dict[str, Any]:
    def sweep(
        statuses: tuple[BindingStatus, ...],
        ids: list[int] | None = None,
        ttl_days: float | None = None,
    ) -> TaskResult:
        report = runtime.run(
            lambda rt: checks.sweep(
                rt.sessionmaker,
                gateway=rt.gateway,
                cipher=rt.cipher,
                statuses=statuses,
                binding_ids=ids,
                ttl_days=ttl_days,
            )
        )
        for part, seconds in report.postponed:
            log.info("rights check of %d bindings postponed %ss", len(part), seconds)
            app.send_task(CHECK_BINDINGS, args=[part], countdown=seconds)
        return report.result()

    @app.task(name=CHECK_ACTIVE)
    def check_active() -> TaskResult:
        return sweep((BindingStatus.active,))

    @app.task(name=CHECK_NEW)
    def check_new() -> TaskResult:
        return sweep((BindingStatus.new,), ttl_days=checks.CheckSettings().new_binding_ttl_days)

    @app.task(name=CHECK_BINDINGS)
    def check_bindings(binding_ids: list[int]) -> TaskResult:
        return sweep(LIVE, ids=[int(i) for i in binding_ids])

    @app.task(name=CHECK_BOT, bind=True)
    def check_bot(self: Task, bot_id: int) -> TaskResult:
        async def work(rt: WorkerRuntime) -> TaskResult:
            async with task_session(rt.sessionmaker) as session:
                return results.ok(
                    await bots.check_token(session, bot_id, gateway=rt.gateway, cipher=rt.cipher)
                )

        try:
            return runtime.run(work)
        except NotFound as exc:
            return results.fail(404, str(exc))
        except Conflict as exc:
            return results.fail(409, str(exc))
        except (FloodWait, TelegramUnavailable) as exc:
            wait = exc.seconds if isinstance(exc, FloodWait) else 5
            if self.request.retries >= 3:
                return results.fail(503, f"gave up after retries: {exc.reason}")
            raise self.retry(
                countdown=max(1, wait), max_retries=3, exc=RetryLater(wait, exc.reason)
            ) from None

    def stats(day: str | None, channel_ids: list[int] | None) -> TaskResult:
        try:
            when = date.fromisoformat(day) if day else None
        except ValueError:
            return results.fail(422, f"not a date: {day!r} (want YYYY-MM-DD)")
        report = runtime.run(
            lambda rt: collect.collect(
                rt.sessionmaker,
                gateway=rt.gateway,
                cipher=rt.cipher,
                timezone=settings.timezone,
                day=when,
                channel_ids=channel_ids,
            )
        )
        for channel_id, seconds in report.postponed:
            app.send_task(
                COLLECT_CHANNEL_STATS,
                args=[channel_id],
                kwargs={"day": report.day.isoformat()},
                countdown=seconds,
            )
        return report.result()

    @app.task(name=COLLECT_STATS)
    def collect_all(day: str | None = None) -> TaskResult:
        return stats(day, None)

    @app.task(name=COLLECT_CHANNEL_STATS)
    def collect_channel(channel_id: int, day: str | None = None) -> TaskResult:
        return stats(day, [int(channel_id)])

    return {
        "check_active": check_active,
        "check_new": check_new,
        "check_bindings": check_bindings,
        "check_bot": check_bot,
        "collect_all": collect_all,
        "collect_channel": collect_channel,
    }
