"""The Celery tasks: thin adapters. Each runs one service coroutine in a unit of work on
the worker's loop (commit on return, then the jobs it collected are published; rollback
on an exception) and returns ``to_result`` of its outcome.

One retry policy for all of them (tasks/names.py): a FLOOD_WAIT or an unreachable
Telegram that reaches a task makes it wait the policy's delay, never a sleep here. A
wait up to ``BOTMGR_MAX_COUNTDOWN_SECONDS`` is Celery's retry; a longer one is kept in
PostgreSQL (a post's row, posts/dispatch.py; a DeferredJob for the others) and the
task ends in state RETRY, to be published again by the reconciler when due — so no task
sits in the broker past the visibility timeout. After the last retry it gives up with a
503 answer; a post is failed then, so it cannot go out later.

A database that fails inside a task (connection lost, a statement refused, the pool
exhausted) is an outage too: the task is retried, nothing is acked as final while the
row it was about stays unrecorded. If the database is still failing after the last
retry, a post stays ``queued`` and the reconciler publishes it again later.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta

from celery import Celery, Task
from celery.exceptions import Ignore
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from botmgr import metrics
from botmgr.bots import service as bots
from botmgr.channels import resolution, rights, sweep
from botmgr.errors import AppError, Unavailable
from botmgr.models import IN_SERVICE, BindingStatus
from botmgr.outcomes import Outcome, Refused, RetryAfterCommit, Status
from botmgr.posts import actions, dispatch
from botmgr.posts import service as posts
from botmgr.posts.dispatch import Postponed
from botmgr.stats import collect, samples
from botmgr.tasks import names
from botmgr.tasks.results import Retrying, TaskResult, to_result
from botmgr.telegram.gateway import TelegramError
from botmgr.telegram.ownership import NotOwner
from botmgr.uow import BOT_HEADER, HOPS_HEADER, Job, UnitOfWork
from botmgr.worker.runtime import WorkerRuntime
from botmgr.worker.schedules import BEAT_MAX_LOOP_INTERVAL

log = logging.getLogger(__name__)
Work = Callable[[UnitOfWork, WorkerRuntime], Awaitable[Outcome]]
# A service step about one row: (session, id, *, gateway, cipher) → its outcome.
RowStep = Callable[..., Awaitable[Outcome]]
# Records a wait in the task's row: (unit, seconds, reason, policy) → Postponed, or the
# outcome of giving up (or of the row, finished meanwhile).
Wait = Callable[[UnitOfWork, float, str, names.RetryPolicy], Awaitable[Postponed | Outcome]]
#: A database that fails under a task: retried like an unreachable Telegram.
DATABASE_ERRORS = (DBAPIError, PoolTimeout, OSError)
#: Database retries of a task with no Telegram retries of its own (a sweep's task has none).
DATABASE_RETRIES = 5


def header_of(task: Task | None, name: str) -> int | None:
    """An integer message header of the task (HOPS_HEADER, BOT_HEADER), None if absent."""
    if task is None:
        return None
    request = task.request
    value = getattr(request, name, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(name)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def hops_of(task: Task | None) -> int:
    """How often this task was forwarded to another worker."""
    return header_of(task, HOPS_HEADER) or 0


def register(app: Celery, runtime: WorkerRuntime) -> None:
    settings = runtime.settings

    def run(
        task: Task | None, work: Work, give_up: Work | None = None, wait: Wait | None = None
    ) -> TaskResult:
        try:
            outcome = runtime.run_unit(work, hops=hops_of(task), bot=header_of(task, BOT_HEADER))
            if isinstance(outcome, posts.NotDue):  # a stale copy: no result, no retry
                log.info("task %s: post %s not due yet", getattr(task, "name", ""), outcome.post_id)
                raise Ignore()
            if isinstance(outcome, RetryAfterCommit) and task is not None:
                if isinstance(outcome.error, names.RETRYABLE):
                    return retry(task, outcome.error, give_up, wait)
            return to_result(outcome)
        except NotOwner as exc:  # nothing was done: the bot's owner does it
            if task is None:
                raise
            return forward(task, exc)
        except Unavailable as exc:  # the render processes, or the broker, busy or down
            if task is None:
                return to_result(exc)
            return outage_retry(task, exc.message)
        except AppError as exc:
            return to_result(exc)
        except names.RETRYABLE as exc:
            if task is None:
                raise
            return retry(task, exc, give_up, wait)
        except DATABASE_ERRORS as exc:
            if task is None:
                raise
            return outage_retry(task, f"database unavailable: {type(exc).__name__}")

    def forward(task: Task, exc: NotOwner) -> TaskResult:
        """Hand the task (same id, arguments and retry count) to the bot's owner, then
        end this run without a result: the owner's run reports the outcome."""
        request = task.request
        job = Job(
            task.name,
            list(request.args or ()),
            request.id,
            dict(request.kwargs or {}),
            retries=request.retries,
            bot=header_of(task, BOT_HEADER),
            queue=exc.queue,
            hops=hops_of(task) + 1,
        )
        try:
            runtime.run(lambda rt: rt.publisher.publish(job))
        except Exception as publish_exc:
            return outage_retry(task, f"task queue unavailable: {type(publish_exc).__name__}")
        log.debug("task %s forwarded to %s", request.id, exc.queue)
        raise Ignore()

    def retry(
        task: Task, exc: TelegramError, give_up: Work | None, wait: Wait | None
    ) -> TaskResult:
        try:
            return wait_for_retry(task, exc, give_up, wait)
        except DATABASE_ERRORS as db_exc:  # the wait could not be stored: a short retry
            return outage_retry(task, f"database unavailable: {type(db_exc).__name__}")

    def wait_for_retry(
        task: Task, exc: TelegramError, give_up: Work | None, wait: Wait | None
    ) -> TaskResult:
        policy = names.retry_policy(task.name, settings)
        seconds = policy.countdown(exc)
        if wait is not None:  # the row keeps the wait and the count
            kept = runtime.run_unit(lambda u, rt: wait(u, seconds, exc.reason, policy))
            if not isinstance(kept, Postponed):  # gave up, or the post is finished
                return to_result(kept)
            if kept.by_countdown:
                return celery_retry(task, seconds, exc.reason)
            return waiting(task, seconds, exc.reason)
        if task.request.retries >= policy.max_retries:
            log.warning("task %s gives up: %s", task.request.id, exc.reason)
            if give_up is not None:
                return to_result(runtime.run_unit(give_up))
            return to_result(Refused(Status.unavailable, f"gave up after retries: {exc.reason}"))
        if seconds <= settings.max_countdown_seconds:
            return celery_retry(task, seconds, exc.reason)
        request = task.request
        due = datetime.now(UTC) + timedelta(seconds=seconds)

        async def defer(u: UnitOfWork, rt: WorkerRuntime) -> None:
            u.defer(
                task.name,
                list(request.args or ()),
                dict(request.kwargs or {}),
                task_id=request.id,
                due=due,
                retries=request.retries + 1,
            )

        runtime.run_unit(defer)
        return waiting(task, seconds, exc.reason)

    def celery_retry(task: Task, seconds: float, reason: str) -> TaskResult:
        log.info("task %s retries in %gs: %s", task.request.id, seconds, reason)
        raise task.retry(
            countdown=seconds, max_retries=None, exc=Retrying(f"{reason}; retrying in {seconds:g}s")
        ) from None

    def waiting(task: Task, seconds: float, reason: str) -> TaskResult:
        """End this run without a result: the wait is stored, the reconciler publishes
        the task again when it is due. The task shows RETRY meanwhile."""
        log.info("task %s waits %ss (stored): %s", task.request.id, seconds, reason)
        task.update_state(state="RETRY", meta=Retrying(f"{reason}; retrying in {seconds:g}s"))
        raise Ignore()

    def outage_retry(task: Task, reason: str) -> TaskResult:
        """The database (or another part of the service) failed under the task: retried
        after the unreachable delay; past the retries the row stays as it was (a post:
        ``queued``, for the reconciler)."""
        policy = names.retry_policy(task.name, settings)
        if task.request.retries >= max(policy.max_retries, DATABASE_RETRIES):
            log.error("task %s stops retrying: %s", task.request.id, reason)
            return to_result(Refused(Status.unavailable, f"{reason}; left for the reconciler"))
        log.warning("task %s: %s", task.request.id, reason)
        return celery_retry(task, policy.later(), reason)

    def on_row(
        task: Task,
        step: RowStep,
        row_id: int,
        give_up: Work | None = None,
        wait: Wait | None = None,
    ) -> TaskResult:
        """A task about one row (binding, post, bot): ``step`` with the worker's gateway."""
        return run(
            task,
            lambda u, rt: step(u.session, row_id, gateway=rt.gateway, cipher=rt.cipher),
            give_up,
            wait,
        )

    @app.task(name=names.BIND_CHANNEL, bind=True)
    def bind_channel(self: Task, binding_id: int) -> TaskResult:
        return on_row(self, resolution.resolve_binding, binding_id)

    @app.task(name=names.CHECK_BINDING, bind=True)
    def check_binding(self: Task, binding_id: int) -> TaskResult:
        return on_row(self, rights.check_binding, binding_id)

    # No STARTED state stored for a post (a result backend write per post): a send
    # takes a moment, its caller waits for SUCCESS or FAILURE and sees PENDING until then.
    @app.task(name=names.SEND_POST, bind=True, track_started=False)
    def send_post(self: Task, post_id: int) -> TaskResult:
        def wait(
            u: UnitOfWork, seconds: float, reason: str, policy: names.RetryPolicy
        ) -> Awaitable[Postponed | Outcome]:
            return dispatch.postpone(
                u.session,
                post_id,
                seconds,
                reason=reason,
                max_retries=policy.max_retries,
                max_countdown=settings.max_countdown_seconds,
            )

        async def send(u: UnitOfWork, rt: WorkerRuntime) -> Outcome:
            sent = await posts.deliver(u, post_id, gateway=rt.gateway, cipher=rt.cipher)
            await samples.after_send(u.session, sent, ages=settings.post_ages)
            return sent

        return run(self, send, wait=wait)

    @app.task(name=names.EDIT_POST, bind=True)
    def edit_post(
        self: Task,
        post_id: int,
        markdown: str | None = None,
        buttons: list[list[dict[str, str]]] | None = None,
    ) -> TaskResult:
        return run(
            self,
            lambda u, rt: actions.edit(
                u.session,
                post_id,
                gateway=rt.gateway,
                cipher=rt.cipher,
                markdown=markdown,
                buttons=buttons,
            ),
        )

    @app.task(name=names.DELETE_POST, bind=True)
    def delete_post(self: Task, post_id: int, auto: bool = False) -> TaskResult:
        return run(
            self,
            lambda u, rt: actions.delete(
                u.session, post_id, gateway=rt.gateway, cipher=rt.cipher, auto=auto
            ),
        )

    @app.task(name=names.PIN_POST, bind=True)
    def pin_post(self: Task, post_id: int, unpin: bool = False, silent: bool = True) -> TaskResult:
        return run(
            self,
            lambda u, rt: actions.pin(
                u.session, post_id, gateway=rt.gateway, cipher=rt.cipher, unpin=unpin, silent=silent
            ),
        )

    @app.task(name=names.RECONCILE)
    def reconcile() -> TaskResult:
        return run(
            None,
            lambda u, rt: dispatch.reconcile(
                u,
                grace=settings.reconcile_grace_seconds,
                # until its next run: beat may fire up to one loop interval late
                lookahead=settings.reconcile_every_seconds + BEAT_MAX_LOOP_INTERVAL,
            ),
        )

    # Starts the attempt on the loop and returns at once: a slow receiver holds no task
    # thread (webhooks/delivery.py). The delivery row, not a result, records it.
    @app.task(name=names.DELIVER_WEBHOOK, ignore_result=True)
    def deliver_webhook(delivery_id: int) -> None:
        async def start(rt: WorkerRuntime) -> None:
            rt.deliverer.start(int(delivery_id))

        runtime.run(start)

    @app.task(name=names.SAMPLE_POSTS, bind=True)
    def sample_posts(self: Task, channel_id: int) -> TaskResult:
        return on_row(self, samples.take, channel_id)

    @app.task(name=names.CHECK_BOT, bind=True)
    def check_bot(self: Task, bot_id: int) -> TaskResult:
        return on_row(self, bots.check_token, bot_id)

    def sweep_rights(
        kind: str,
        statuses: tuple[BindingStatus, ...],
        ids: list[int] | None = None,
        ttl_days: float | None = None,
    ) -> TaskResult:
        policy = names.retry_policy(names.CHECK_BINDINGS, settings)
        return run(
            None,
            lambda u, rt: metrics.timed(
                metrics.SWEEP_DURATION,
                kind,
                sweep.sweep(
                    u,
                    rt.fleet,
                    gateway=rt.gateway,
                    cipher=rt.cipher,
                    policy=policy,
                    statuses=statuses,
                    binding_ids=ids,
                    ttl_days=ttl_days,
                    bots_at_once=settings.tg_max_clients,
                    scatter=ids is None,  # the fleet-wide sweeps: each owner runs its part
                ),
            ),
        )

    @app.task(name=names.CHECK_ACTIVE)
    def check_active() -> TaskResult:
        return sweep_rights("active", (BindingStatus.active,))

    @app.task(name=names.CHECK_NEW)
    def check_new() -> TaskResult:
        return sweep_rights("new", (BindingStatus.new,), ttl_days=settings.new_binding_ttl_days)

    @app.task(name=names.CHECK_BINDINGS)
    def check_bindings(binding_ids: list[int]) -> TaskResult:
        return sweep_rights("share", IN_SERVICE, ids=[int(i) for i in binding_ids])

    def stats(kind: str, day: str | None, channel_ids: list[int] | None) -> TaskResult:
        try:
            when = date.fromisoformat(day) if day else None
        except ValueError:
            return to_result(Refused(Status.invalid, f"not a date: {day!r} (want YYYY-MM-DD)"))
        policy = names.retry_policy(names.COLLECT_STATS, settings)
        return run(
            None,
            lambda u, rt: metrics.timed(
                metrics.COLLECTION_DURATION,
                kind,
                collect.collect(
                    u,
                    rt.fleet,
                    gateway=rt.gateway,
                    cipher=rt.cipher,
                    policy=policy,
                    timezone=settings.timezone,
                    day=when,
                    channel_ids=channel_ids,
                    bots_at_once=settings.tg_max_clients,
                    post_ages=settings.post_ages,
                ),
            ),
        )

    @app.task(name=names.COLLECT_STATS)
    def collect_all(day: str | None = None, channel_ids: list[int] | None = None) -> TaskResult:
        ids = [int(c) for c in channel_ids] if channel_ids is not None else None
        return stats("all", day, ids)

    @app.task(name=names.COLLECT_CHANNEL_STATS)
    def collect_channel(channel_id: int, day: str | None = None) -> TaskResult:
        return stats("channel", day, [int(channel_id)])
