"""Response models of GET /audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from botmgr.models import ActorKind


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    actor_kind: ActorKind
    actor: str
    address: str | None
    action: str
    object_type: str
    object_id: str | None
    details: dict[str, Any]
    request_id: str | None


class AuditPage(BaseModel):
    events: list[AuditEventOut]
    total: int
    limit: int
    offset: int
