"""Due-time dispatch and the reconciler: no post waits in the broker, none is stranded.

A post that must wait (a FLOOD_WAIT, an unreachable Telegram) is not retried with a long
Celery countdown: Redis would hand such a task out again every visibility timeout, and a
worker holding it would sit on it. ``postpone`` records the wait in the post's row
(``not_before``, and ``attempts``, the retry count the row keeps across re-publishing).
A wait up to ``max_countdown`` seconds is still a Celery retry (``dispatched_at`` = now:
a task is out); a longer one leaves no task (``dispatched_at`` NULL) and the reconciler
publishes the post when it is due. Other tasks that must wait are ``DeferredJob`` rows
(uow.UnitOfWork.defer), published by the same run, and so are due webhook deliveries
(webhooks/delivery.py).

The reconciler (beat entry ``reconcile-posts``, every minute by default; it also deletes
expired Idempotency-Keys and dispatches the post samples come due, stats/samples.py)
re-publishes
a ``queued`` post whose task was published more than ``grace`` seconds ago (or was due
that long ago) and has not finished: the API died between its commit and the publish,
Redis lost its data, or a task gave up while the database was down. A post being sent
holds its row lock and is skipped (``SKIP LOCKED``); one whose task is merely slow gets a
second task, which waits for the row lock and finds the post sent. Re-publishing is
therefore safe: the row lock and the stored ``random_id`` keep every post exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.errors import NotFound
from botmgr.idempotency import service as idempotency
from botmgr.models import Channel, DeferredJob, Post, PostStatus
from botmgr.outcomes import Status
from botmgr.posts.service import PostOutcome, fail_queued, outcome
from botmgr.stats import samples
from botmgr.tasks.names import SEND_POST
from botmgr.uow import UnitOfWork
from botmgr.webhooks import delivery as webhooks

#: At most this many rows of each kind per run: a run stays one short transaction, and
#: the next run (a minute later) takes the rest.
BATCH = 1000


@dataclass(frozen=True, slots=True)
class Postponed:
    """The post waits ``seconds``; ``by_countdown``: a Celery retry publishes it (else
    the reconciler does, when it is due)."""

    seconds: float
    by_countdown: bool
    attempts: int


async def postpone(
    session: AsyncSession,
    post_id: int,
    seconds: float,
    *,
    reason: str,
    max_retries: int,
    max_countdown: float,
) -> Postponed | PostOutcome:
    """Record that a queued post waits ``seconds``; once it has waited ``max_retries``
    times it is failed instead, and a post no longer queued answers what happened."""
    post = await session.get(Post, post_id, with_for_update=True)
    if post is None:
        raise NotFound("post not found")
    if post.status != PostStatus.queued:
        return outcome(post, await session.get_one(Channel, post.channel_id))
    now = datetime.now(UTC)
    post.attempts += 1
    if post.attempts > max_retries:
        return await fail_queued(session, post_id, f"gave up after {max_retries} retries: {reason}")
    by_countdown = seconds <= max_countdown
    post.not_before = now + timedelta(seconds=seconds)
    post.dispatched_at = now if by_countdown else None
    return Postponed(seconds, by_countdown, post.attempts)


@dataclass(frozen=True, slots=True)
class Reconciled:
    jobs: int  # deferred jobs published
    due: int  # waiting posts published when due
    lost: int  # queued posts whose task never finished, published again
    keys: int = 0  # expired Idempotency-Keys deleted
    webhooks: int = 0  # webhook deliveries published (due, or lost)
    samples: int = 0  # channels whose post samples came due (stats/samples.py)
    status = Status.ok

    def body(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs,
            "due": self.due,
            "lost": self.lost,
            "keys": self.keys,
            "webhooks": self.webhooks,
            "samples": self.samples,
        }


async def reconcile(unit: UnitOfWork, *, grace: float, lookahead: float) -> Reconciled:
    """Publish what is due within ``lookahead`` seconds (with the rest as a countdown)
    and re-publish queued posts whose task is more than ``grace`` seconds overdue."""
    session = unit.session
    now = datetime.now(UTC)
    horizon = now + timedelta(seconds=lookahead)
    jobs = await _publish_jobs(unit, now, horizon)
    waiting = (
        await session.execute(
            select(Post)
            .where(
                Post.status == PostStatus.queued,
                Post.dispatched_at.is_(None),
                or_(Post.not_before.is_(None), Post.not_before <= horizon),
            )
            .order_by(Post.not_before)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
    ).scalars()
    due = [_publish_post(unit, post, now) for post in waiting]
    overdue = now - timedelta(seconds=grace)
    stranded = (
        await session.execute(
            select(Post)
            .where(
                Post.status == PostStatus.queued,
                Post.dispatched_at < overdue,
                func.coalesce(Post.not_before, Post.dispatched_at) < overdue,
            )
            .order_by(Post.id)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
    ).scalars()
    lost = [_publish_post(unit, post, now) for post in stranded]
    keys = await idempotency.purge_expired(session, limit=BATCH)
    hooks = await webhooks.publish_due(unit, now=now, horizon=horizon, stale=grace)
    sampled = await samples.dispatch_due(unit, grace=grace)
    return Reconciled(
        jobs=jobs,
        due=len(due),
        lost=len(lost),
        keys=keys,
        webhooks=hooks,
        samples=sampled.channels,
    )


def _publish_post(unit: UnitOfWork, post: Post, now: datetime) -> int:
    wait = (post.not_before - now).total_seconds() if post.not_before else 0.0
    post.dispatched_at = max(now, post.not_before) if post.not_before else now
    post_id = post.id

    async def unpublished(session: AsyncSession) -> None:
        # The broker refused: no task is out, so the next run publishes it again.
        await session.execute(
            update(Post)
            .where(Post.id == post_id, Post.status == PostStatus.queued)
            .values(dispatched_at=None)
        )

    # Same task id: GET /tasks/{id} of the post's first answer follows it.
    unit.enqueue(
        SEND_POST,
        post_id,
        task_id=post.task_id,
        countdown=wait if wait > 0 else None,
        on_refused=unpublished,
    )
    return post_id


async def _publish_jobs(unit: UnitOfWork, now: datetime, horizon: datetime) -> int:
    rows = (
        await unit.session.execute(
            select(DeferredJob)
            .where(DeferredJob.due_at <= horizon)
            .order_by(DeferredJob.due_at)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
    ).scalars()
    count = 0
    for row in rows:
        wait = (row.due_at - now).total_seconds()
        kept = {
            "name": row.name,
            "args": row.args,
            "kwargs": row.kwargs,
            "task_id": row.task_id,
            "retries": row.retries,
            "due_at": row.due_at,
        }

        async def put_back(session: AsyncSession, kept: dict[str, Any] = kept) -> None:
            session.add(DeferredJob(**kept))

        unit.enqueue(
            row.name,
            *row.args,
            kwargs=row.kwargs,
            task_id=row.task_id,
            countdown=wait if wait > 0 else None,
            retries=row.retries,
            on_refused=put_back,
        )
        await unit.session.delete(row)
        count += 1
    return count
