"""GET /audit: the audit log, newest first, filtered and paged as the other lists
(``{"events": [...], "total", "limit", "offset"}``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from botmgr.audit import service
from botmgr.audit.schemas import AuditPage
from botmgr.deps import ReaderDep
from botmgr.errors import RESPONSES
from botmgr.models import ActorKind
from botmgr.security import require_operator

router = APIRouter(
    prefix="/audit", tags=["audit"], dependencies=[Depends(require_operator)], responses=RESPONSES
)


@router.get("")
async def list_events(
    reader: ReaderDep,
    actor: Annotated[str | None, Query(max_length=255)] = None,
    actor_kind: Annotated[ActorKind | None, Query()] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    object_type: Annotated[str | None, Query(max_length=32)] = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> AuditPage:
    """Who changed what: ``actor`` (username), ``actor_kind`` (api | console | system),
    ``action`` (``post.edit``; ``post.*`` for every action on posts), ``object_type``
    and ``object_id`` (a row id: bot, channel, binding, post, media; a schedule's name),
    ``from``/``to`` bound ``at`` (from inclusive, to exclusive)."""
    filters = service.AuditFilter(
        actor=actor,
        actor_kind=actor_kind,
        action=action,
        object_type=object_type,
        object_id=object_id,
        since=since,
        until=until,
    )
    return await service.table(reader, filters, limit=limit, offset=offset)
