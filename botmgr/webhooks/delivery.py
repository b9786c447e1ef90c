"""Delivering the outbox: one attempt per DELIVER_WEBHOOK task, retried by due time.

The task only hands the attempt to the worker's event loop (``Deliverer.start``) and
returns: the attempt — claim the row, POST, record the answer — runs there, at most
``BOTMGR_WEBHOOK_CONCURRENCY`` at once, and never holds a task thread while a receiver
is slow (a hanging receiver costs one coroutine for ``BOTMGR_WEBHOOK_TIMEOUT_SECONDS``,
no post waits for it). Its database work passes a gate of ``db.WEBHOOK_SESSIONS``
sessions, which db.worker_pool_size counts in the worker's pool.

An attempt: the row is claimed under its lock — ``dispatched_at`` set past the attempt's
longest time, a lease: a second copy of the task finds it held and does nothing —, the
request is built from it, the lock is released; the POST goes to the checked address (targets.py),
with a short timeout and no redirect followed; 2xx is ``delivered``. Anything else
(another status, a timeout, a refused connection, an address now private) is recorded
(``attempts``, ``last_status``, ``last_error``) and the next attempt is due after
``backoff`` — published as a countdown when short, else left to the reconciler
(``publish_due``) — until ``BOTMGR_WEBHOOK_GIVE_UP_HOURS`` after the event: ``failed``.

Delivery is at least once: a worker that dies mid-attempt leaves the row dispatched,
and the reconciler publishes it again after the grace; receivers dedupe on
``X-Botmgr-Delivery``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr import metrics
from botmgr.db import WEBHOOK_SESSIONS, SessionMaker
from botmgr.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from botmgr.security import Cipher
from botmgr.settings import Settings
from botmgr.uow import Publisher, UnitOfWork, unit_of_work
from botmgr.webhooks import signing, targets
from botmgr.webhooks.events import publish

log = logging.getLogger(__name__)
#: At most this many rows of each kind per reconciler run.
BATCH = 1000
#: A task this much before its row's due time still runs it (clocks differ a little).
EARLY = 0.5
MAX_ERROR = 500  # characters of an error kept
LEASE_MARGIN = 10.0  # seconds an attempt's lease outlasts its timeout (resolve, record)


def backoff(attempts: int, *, first: float, longest: float) -> float:
    """Seconds before the attempt after ``attempts`` failed ones: ``first``, doubling,
    at most ``longest``."""
    return float(min(longest, first * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True, slots=True)
class Request:
    """One attempt, as read from the row under its lock."""

    delivery_id: int
    url: str
    secret: str
    event: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Answer:
    status: int | None  # the receiver's HTTP status; None: none came
    error: str | None  # why it is not delivered; None: delivered

    @property
    def delivered(self) -> bool:
        return self.error is None


async def _claim(
    session: AsyncSession, delivery_id: int, cipher: Cipher, lease: float
) -> Request | None:
    """The attempt to make now, or None (delivered, failed, not due, or being tried)."""
    row = (
        await session.execute(
            select(WebhookDelivery, WebhookEndpoint)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.id == delivery_id)
            .with_for_update(of=WebhookDelivery, skip_locked=True)
        )
    ).one_or_none()
    if row is None:
        return None
    delivery, endpoint = row
    now = datetime.now(UTC)
    if delivery.status != DeliveryStatus.pending:
        return None
    if delivery.next_attempt_at > now + timedelta(seconds=EARLY):
        return None  # a copy published for an earlier time (a replay moved it)
    # Published rows have dispatched_at at most their due time; later is an attempt's lease.
    held_until = max(now, delivery.next_attempt_at) + timedelta(seconds=1)
    if delivery.dispatched_at is not None and delivery.dispatched_at > held_until:
        return None
    if not endpoint.enabled:
        delivery.status, delivery.last_error = DeliveryStatus.failed, "endpoint disabled"
        delivery.dispatched_at = None
        return None
    delivery.dispatched_at = now + timedelta(seconds=lease)
    body = signing.body_of(delivery.event_id, delivery.event, delivery.created_at, delivery.data)
    return Request(
        delivery.id, endpoint.url, cipher.decrypt(endpoint.secret_encrypted), delivery.event, body
    )


async def send(client: httpx.AsyncClient, request: Request, *, allow_private: bool) -> Answer:
    """POST the request to its checked address; the receiver's answer, or what failed."""
    try:
        target = await targets.resolve(request.url, allow_private=allow_private)
    except targets.TargetRefused as exc:
        return Answer(None, exc.message)
    timestamp = int(time.time())
    headers = signing.headers(
        secret=request.secret,
        event=request.event,
        delivery_id=request.delivery_id,
        timestamp=timestamp,
        body=request.body,
    )
    headers["Host"] = target.host_header()
    extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else None
    try:
        response = await client.post(
            target.pinned_url(), content=request.body, headers=headers, extensions=extensions
        )
    except httpx.TimeoutException:
        return Answer(None, "timed out")
    except httpx.HTTPError as exc:
        return Answer(None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR] or type(exc).__name__)
    if 200 <= response.status_code < 300:
        return Answer(response.status_code, None)
    reason = response.reason_phrase or "not a 2xx answer"
    if response.is_redirect:
        reason = f"redirect to {response.headers.get('location', '?')} (not followed)"
    return Answer(response.status_code, f"HTTP {response.status_code}: {reason}"[:MAX_ERROR])


def _record(
    unit: UnitOfWork, delivery: WebhookDelivery, answer: Answer, settings: Settings
) -> None:
    now = datetime.now(UTC)
    delivery.attempts += 1
    delivery.last_status, delivery.last_error = answer.status, answer.error
    delivery.dispatched_at = None
    if answer.delivered:
        delivery.status, delivery.delivered_at = DeliveryStatus.delivered, now
        metrics.WEBHOOK_DELIVERIES.labels(delivery.event, "delivered").inc()
        return
    wait = backoff(
        delivery.attempts,
        first=settings.webhook_retry_first_seconds,
        longest=settings.webhook_retry_longest_seconds,
    )
    due = now + timedelta(seconds=wait)
    window_start = delivery.retry_from or delivery.created_at
    if due > window_start + timedelta(hours=settings.webhook_give_up_hours):
        delivery.status = DeliveryStatus.failed
        metrics.WEBHOOK_DELIVERIES.labels(delivery.event, "failed").inc()
        return
    metrics.WEBHOOK_DELIVERIES.labels(delivery.event, "retrying").inc()
    delivery.next_attempt_at = due
    if wait <= unit.max_countdown:
        delivery.dispatched_at = now
        publish(unit, delivery.id, countdown=wait)


class Deliverer:
    """A worker process's attempts, on its event loop (create it there)."""

    def __init__(
        self, settings: Settings, sessionmaker: SessionMaker, publisher: Publisher, cipher: Cipher
    ) -> None:
        self.settings = settings
        self.sessionmaker, self.publisher, self.cipher = sessionmaker, publisher, cipher
        self._sessions = asyncio.Semaphore(WEBHOOK_SESSIONS)
        self._flying = asyncio.Semaphore(settings.webhook_concurrency)
        self._tasks: set[asyncio.Task[Answer | None]] = set()
        self.client = httpx.AsyncClient(
            timeout=settings.webhook_timeout_seconds,
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment between us and the check
        )

    @asynccontextmanager
    async def _unit(self) -> AsyncIterator[UnitOfWork]:
        async with self._sessions, unit_of_work(self.sessionmaker, self.publisher) as unit:
            yield unit

    def start(self, delivery_id: int) -> None:
        """Begin the attempt in the background (call on the loop)."""
        task = asyncio.get_running_loop().create_task(self.attempt(delivery_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def attempt(self, delivery_id: int) -> Answer | None:
        try:
            async with self._flying:
                async with self._unit() as unit:
                    lease = self.settings.webhook_timeout_seconds + LEASE_MARGIN
                    request = await _claim(unit.session, delivery_id, self.cipher, lease)
                if request is None:
                    return None
                answer = await send(
                    self.client, request, allow_private=self.settings.webhook_allow_private
                )
                async with self._unit() as unit:
                    delivery = await unit.session.get(
                        WebhookDelivery, delivery_id, with_for_update=True
                    )
                    if delivery is not None and delivery.status == DeliveryStatus.pending:
                        _record(unit, delivery, answer, self.settings)
            log.info("webhook delivery %s: %s", delivery_id, answer.error or "delivered")
            return answer
        except Exception:  # the row stays dispatched: the reconciler tries it again
            log.exception("webhook delivery %s: attempt failed", delivery_id)
            return None

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.client.aclose()


async def publish_due(unit: UnitOfWork, *, now: datetime, horizon: datetime, stale: float) -> int:
    """The reconciler's part: publish the deliveries due by ``horizon`` that have no task
    out, and again those whose task was published more than ``stale`` seconds ago and
    never recorded an attempt (lost with a worker, or refused by the broker)."""
    overdue = now - timedelta(seconds=stale)
    rows = (
        await unit.session.execute(
            select(WebhookDelivery)
            .where(
                WebhookDelivery.status == DeliveryStatus.pending,
                WebhookDelivery.next_attempt_at <= horizon,
                or_(
                    WebhookDelivery.dispatched_at.is_(None),
                    func.greatest(WebhookDelivery.dispatched_at, WebhookDelivery.next_attempt_at)
                    < overdue,
                ),
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
    ).scalars()
    count = 0
    for delivery in rows:
        wait = (delivery.next_attempt_at - now).total_seconds()
        delivery.dispatched_at = max(now, delivery.next_attempt_at)
        publish(unit, delivery.id, countdown=wait if wait > 0 else None)
        count += 1
    return count
