"""/webhooks: register, list, change and remove receivers of signed event notifications
(README, "Webhooks"); list an endpoint's deliveries and replay one. The secret is taken,
never answered."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from botmgr.deps import CipherDep, SettingsDep, UnitDep
from botmgr.errors import RESPONSES
from botmgr.models import DeliveryStatus
from botmgr.security import require_operator
from botmgr.webhooks import service
from botmgr.webhooks.schemas import (
    DeliveryList,
    DeliveryOut,
    WebhookIn,
    WebhookList,
    WebhookOut,
    WebhookPatch,
)

router = APIRouter(
    prefix="/webhooks",
    tags=["webhooks"],
    dependencies=[Depends(require_operator)],
    responses=RESPONSES,
)

Id = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post("", status_code=201)
async def create_webhook(
    body: WebhookIn, unit: UnitDep, cipher: CipherDep, settings: SettingsDep
) -> WebhookOut:
    return await service.create(
        unit.session, body, cipher=cipher, allow_private=settings.webhook_allow_private
    )


@router.get("")
async def list_webhooks(unit: UnitDep) -> WebhookList:
    return WebhookList(data=await service.listed(unit.session))


@router.patch("/{webhook_id}")
async def patch_webhook(
    webhook_id: Id, body: WebhookPatch, unit: UnitDep, cipher: CipherDep, settings: SettingsDep
) -> WebhookOut:
    return await service.patch(
        unit.session,
        webhook_id,
        body,
        cipher=cipher,
        allow_private=settings.webhook_allow_private,
    )


@router.delete("/{webhook_id}", status_code=204)
async def delete_webhook(webhook_id: Id, unit: UnitDep) -> Response:
    await service.delete(unit.session, webhook_id)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries")
async def list_deliveries(
    webhook_id: Id,
    unit: UnitDep,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = service.RECENT,
) -> DeliveryList:
    found = await service.deliveries(
        unit.session, webhook_id=webhook_id, status=status, limit=limit
    )
    return DeliveryList(data=found)


@router.post("/deliveries/{delivery_id}/replay", status_code=202)
async def replay_delivery(delivery_id: Id, unit: UnitDep) -> DeliveryOut:
    return await service.replay(unit, delivery_id)
