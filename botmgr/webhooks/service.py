"""Webhook endpoints (POST/GET/PATCH/DELETE /webhooks, the console's page) and their
deliveries (listed; replayed on request). The URL is checked (targets.resolve) whenever
it is set; the secret is stored encrypted under the service's key, like bot tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.audit.service import record
from botmgr.errors import NotFound
from botmgr.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from botmgr.security import Cipher
from botmgr.uow import UnitOfWork
from botmgr.webhooks import targets
from botmgr.webhooks.events import publish
from botmgr.webhooks.schemas import DeliveryOut, WebhookIn, WebhookOut, WebhookPatch

RECENT = 50  # deliveries listed by default


async def _checked(url: str, allow_private: bool) -> str:
    await targets.resolve(url, allow_private=allow_private)
    return url.strip()


async def create(
    session: AsyncSession, body: WebhookIn, *, cipher: Cipher, allow_private: bool
) -> WebhookOut:
    endpoint = WebhookEndpoint(
        url=await _checked(body.url, allow_private),
        secret_encrypted=cipher.encrypt(body.secret.get_secret_value()),
        events=sorted({e.value for e in body.events}),
        enabled=body.enabled,
    )
    session.add(endpoint)
    await session.flush()
    await session.refresh(endpoint)
    record(
        session,
        "webhook.create",
        object_type="webhook",
        object_id=endpoint.id,
        details=_seen(endpoint),
    )
    return to_out(endpoint)


async def get(session: AsyncSession, webhook_id: int, *, lock: bool = False) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, webhook_id, with_for_update=lock)
    if endpoint is None:
        raise NotFound("webhook not found")
    return endpoint


async def patch(
    session: AsyncSession,
    webhook_id: int,
    body: WebhookPatch,
    *,
    cipher: Cipher,
    allow_private: bool,
) -> WebhookOut:
    endpoint = await get(session, webhook_id, lock=True)
    if body.url is not None:
        endpoint.url = await _checked(body.url, allow_private)
    if body.secret is not None:
        endpoint.secret_encrypted = cipher.encrypt(body.secret.get_secret_value())
    if body.events is not None:
        endpoint.events = sorted({e.value for e in body.events})
    if body.enabled is not None:
        endpoint.enabled = body.enabled
    changed = body.model_dump(mode="json", exclude_none=True, exclude={"secret"})
    if body.secret is not None:
        changed["secret"] = "changed"  # never the value
    record(session, "webhook.update", object_type="webhook", object_id=endpoint.id, details=changed)
    await session.flush()
    await session.refresh(endpoint)
    return (await listed(session, [endpoint.id]))[0]


async def delete(session: AsyncSession, webhook_id: int) -> None:
    """The endpoint and its deliveries (pending ones are never sent)."""
    endpoint = await get(session, webhook_id, lock=True)
    record(
        session,
        "webhook.delete",
        object_type="webhook",
        object_id=webhook_id,
        details=_seen(endpoint),
    )
    await session.delete(endpoint)
    await session.flush()


def _seen(endpoint: WebhookEndpoint) -> dict[str, object]:
    """What the audit log keeps of an endpoint: never its secret."""
    return {"url": endpoint.url, "events": list(endpoint.events), "enabled": endpoint.enabled}


def to_out(endpoint: WebhookEndpoint, pending: int = 0, failed: int = 0) -> WebhookOut:
    return WebhookOut(
        id=endpoint.id,
        url=endpoint.url,
        events=list(endpoint.events),
        enabled=endpoint.enabled,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
        pending=pending,
        failed=failed,
    )


async def listed(session: AsyncSession, ids: Sequence[int] | None = None) -> list[WebhookOut]:
    """Every endpoint (or those of ``ids``) with its pending and failed counts."""
    counts = (
        select(
            WebhookDelivery.endpoint_id,
            func.count(case((WebhookDelivery.status == DeliveryStatus.pending, 1))).label("p"),
            func.count(case((WebhookDelivery.status == DeliveryStatus.failed, 1))).label("f"),
        )
        .group_by(WebhookDelivery.endpoint_id)
        .subquery()
    )
    stmt = (
        select(WebhookEndpoint, counts.c.p, counts.c.f)
        .outerjoin(counts, counts.c.endpoint_id == WebhookEndpoint.id)
        .order_by(WebhookEndpoint.id)
    )
    if ids is not None:
        stmt = stmt.where(WebhookEndpoint.id.in_(list(ids)))
    rows = await session.execute(stmt)
    return [to_out(e, p or 0, f or 0) for e, p, f in rows.all()]


def delivery_out(row: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        webhook_id=row.endpoint_id,
        event_id=row.event_id,
        event=row.event,
        status=row.status.value,
        attempts=row.attempts,
        last_status=row.last_status,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at if row.status == DeliveryStatus.pending else None,
        delivered_at=row.delivered_at,
        created_at=row.created_at,
        data=row.data,
    )


async def deliveries(
    session: AsyncSession,
    *,
    webhook_id: int | None = None,
    status: DeliveryStatus | None = None,
    limit: int = RECENT,
) -> list[DeliveryOut]:
    """The most recent deliveries first (of one endpoint, in one status)."""
    stmt = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)
    if webhook_id is not None:
        await get(session, webhook_id)
        stmt = stmt.where(WebhookDelivery.endpoint_id == webhook_id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    return [delivery_out(row) for row in (await session.execute(stmt)).scalars()]


async def replay(unit: UnitOfWork, delivery_id: int) -> DeliveryOut:
    """Attempt the delivery again now, whatever its state (a failed one starts a new
    round of retries from now; a delivered one is sent once more, same delivery id)."""
    delivery = await unit.session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None:
        raise NotFound("delivery not found")
    now = datetime.now(UTC)
    delivery.status, delivery.next_attempt_at = DeliveryStatus.pending, now
    delivery.retry_from = now  # a new window of retries (BOTMGR_WEBHOOK_GIVE_UP_HOURS)
    delivery.dispatched_at = now
    publish(unit, delivery.id)
    record(
        unit.session,
        "webhook.replay",
        object_type="webhook_delivery",
        object_id=delivery.id,
        details={"webhook_id": delivery.endpoint_id, "event": delivery.event},
    )
    return delivery_out(delivery)
