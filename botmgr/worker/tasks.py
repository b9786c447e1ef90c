"""The Celery tasks: thin adapters. Each runs one service coroutine in a unit of work on
the worker's loop (commit on return, then the jobs it collected are published; rollback
on an exception) and returns ``to_result`` of its outcome.

One retry policy for all of them (tasks/names.py): a FLOOD_WAIT or an unreachable
Telegram that reaches a task re-schedules it after the policy's delay (Celery's retry,
never a sleep here), and after the last retry it gives up with a 503 answer — a post is
failed then, so it cannot go out later.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date

from celery import Celery, Task

from botmgr.bots import service as bots
from botmgr.channels import resolution, rights, sweep
from botmgr.db import is_busy
from botmgr.errors import AppError
from botmgr.models import IN_SERVICE, BindingStatus
from botmgr.outcomes import Outcome, Refused, RetryAfterCommit, Status
from botmgr.posts import service as posts
from botmgr.stats import collect
from botmgr.tasks import names
from botmgr.tasks.results import Retrying, TaskResult, to_result
from botmgr.telegram.gateway import TelegramError
from botmgr.uow import UnitOfWork
from botmgr.worker.runtime import WorkerRuntime

log = logging.getLogger(__name__)
Work = Callable[[UnitOfWork, WorkerRuntime], Awaitable[Outcome]]
# A service step about one row: (session, id, *, gateway, cipher) → its outcome.
RowStep = Callable[..., Awaitable[Outcome]]


def register(app: Celery, runtime: WorkerRuntime) -> None:
    settings = runtime.settings

    def run(task: Task | None, work: Work, give_up: Work | None = None) -> TaskResult:
        try:
            outcome = runtime.run_unit(work)
            if isinstance(outcome, RetryAfterCommit) and task is not None:
                if isinstance(outcome.error, names.RETRYABLE):
                    return retry(task, outcome.error, give_up)
            return to_result(outcome)
        except AppError as exc:
            return to_result(exc)
        except names.RETRYABLE as exc:
            if task is None:
                raise
            return retry(task, exc, give_up)
        except Exception as exc:
            # PostgreSQL did not answer in time (pool, lock or statement timeout): the
            # unit rolled back, so the task is asked again later like an unreachable
            # Telegram (a row lock's holder may be waiting for Telegram itself).
            if task is None or not is_busy(exc):
                raise
            return retry(task, f"database busy ({type(exc).__name__})", give_up)

    def retry(task: Task, why: TelegramError | str, give_up: Work | None) -> TaskResult:
        policy = names.retry_policy(task.name, settings)
        reason = why if isinstance(why, str) else why.reason
        if task.request.retries >= policy.max_retries:
            log.warning("task %s gives up: %s", task.request.id, reason)
            if give_up is not None:
                return to_result(runtime.run_unit(give_up))
            return to_result(Refused(Status.unavailable, f"gave up after retries: {reason}"))
        seconds = policy.later() if isinstance(why, str) else policy.delay(why)
        log.info("task %s retries in %ss: %s", task.request.id, seconds, reason)
        raise task.retry(
            countdown=seconds,
            max_retries=policy.max_retries,
            exc=Retrying(f"{reason}; retrying in {seconds}s"),
        ) from None

    def on_row(task: Task, step: RowStep, row_id: int, give_up: Work | None = None) -> TaskResult:
        """A task about one row (binding, post, bot): ``step`` with the worker's gateway."""
        return run(
            task,
            lambda u, rt: step(u.session, row_id, gateway=rt.gateway, cipher=rt.cipher),
            give_up,
        )

    @app.task(name=names.BIND_CHANNEL, bind=True)
    def bind_channel(self: Task, binding_id: int) -> TaskResult:
        return on_row(self, resolution.resolve_binding, binding_id)

    @app.task(name=names.CHECK_BINDING, bind=True)
    def check_binding(self: Task, binding_id: int) -> TaskResult:
        return on_row(self, rights.check_binding, binding_id)

    @app.task(name=names.SEND_POST, bind=True)
    def send_post(self: Task, post_id: int) -> TaskResult:
        def give_up(u: UnitOfWork, rt: WorkerRuntime) -> Awaitable[Outcome]:
            return posts.fail_queued(
                u.session, post_id, "gave up after retries: Telegram kept refusing"
            )

        return on_row(self, posts.send, post_id, give_up)

    @app.task(name=names.CHECK_BOT, bind=True)
    def check_bot(self: Task, bot_id: int) -> TaskResult:
        return on_row(self, bots.check_token, bot_id)

    def sweep_rights(
        statuses: tuple[BindingStatus, ...],
        ids: list[int] | None = None,
        ttl_days: float | None = None,
    ) -> TaskResult:
        policy = names.retry_policy(names.CHECK_BINDINGS, settings)
        return run(
            None,
            lambda u, rt: sweep.sweep(
                u,
                rt.fleet,
                gateway=rt.gateway,
                cipher=rt.cipher,
                policy=policy,
                statuses=statuses,
                binding_ids=ids,
                ttl_days=ttl_days,
                bots_at_once=settings.tg_max_clients,
            ),
        )

    @app.task(name=names.CHECK_ACTIVE)
    def check_active() -> TaskResult:
        return sweep_rights((BindingStatus.active,))

    @app.task(name=names.CHECK_NEW)
    def check_new() -> TaskResult:
        return sweep_rights((BindingStatus.new,), ttl_days=settings.new_binding_ttl_days)

    @app.task(name=names.CHECK_BINDINGS)
    def check_bindings(binding_ids: list[int]) -> TaskResult:
        return sweep_rights(IN_SERVICE, ids=[int(i) for i in binding_ids])

    def stats(day: str | None, channel_ids: list[int] | None) -> TaskResult:
        try:
            when = date.fromisoformat(day) if day else None
        except ValueError:
            return to_result(Refused(Status.invalid, f"not a date: {day!r} (want YYYY-MM-DD)"))
        policy = names.retry_policy(names.COLLECT_STATS, settings)
        return run(
            None,
            lambda u, rt: collect.collect(
                u,
                rt.fleet,
                gateway=rt.gateway,
                cipher=rt.cipher,
                policy=policy,
                timezone=settings.timezone,
                day=when,
                channel_ids=channel_ids,
                bots_at_once=settings.tg_max_clients,
            ),
        )

    @app.task(name=names.COLLECT_STATS)
    def collect_all(day: str | None = None) -> TaskResult:
        return stats(day, None)

    @app.task(name=names.COLLECT_CHANNEL_STATS)
    def collect_channel(channel_id: int, day: str | None = None) -> TaskResult:
        return stats(day, [int(channel_id)])
