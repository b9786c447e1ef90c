"""Recording audit events (in the unit of work of the change) and listing them (GET
/audit and the console's Audit log page).

``record`` is what a service function calls beside the change it makes: it adds the
event to the same session, so the commit that keeps the change keeps the event and a
rollback drops both. The actor is the one the unit was opened with (audit/context.py).

Details never hold a secret: callers pass none, and ``scrub`` is the net under them —
a key that names a secret (token, password, secret, session, authorization, cookie,
api_hash) has its value replaced, and so has any value shaped like a bot token or a
Fernet ciphertext, at any depth. Long strings are cut, so an event stays small.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from botmgr.audit.context import actor_of, remember
from botmgr.audit.schemas import AuditEventOut, AuditPage
from botmgr.errors import Invalid
from botmgr.models import ActorKind, AuditEvent
from botmgr.pages import TOTAL, fetch_page, page_rows, row_columns

REDACTED = "[redacted]"
SECRET_KEYS = ("token", "password", "passwd", "secret", "session", "authorization", "cookie")
_SECRET_KEY = re.compile("|".join((*SECRET_KEYS, "api_hash")), re.I)
# A bot token (123456:AA…), a Fernet ciphertext (gAAAAA…), a Basic credential.
_SECRET_VALUE = re.compile(r"\d{3,}:[\w-]{20,}|gAAAAA[\w=-]{40,}|\bBasic\s+[\w+/=]{8,}")
TEXT_MAX = 500  # characters of a string kept in details


def scrub(value: Any) -> Any:
    """``value`` (JSON-able) without secrets and without long strings."""
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if _SECRET_KEY.search(str(k)) else scrub(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        value = _SECRET_VALUE.sub(REDACTED, value)
        return value if len(value) <= TEXT_MAX else value[:TEXT_MAX] + "…"
    if value is None or isinstance(value, bool | int | float):
        return value
    return scrub(str(value))


def record(
    session: AsyncSession,
    action: str,
    *,
    object_type: str,
    object_id: int | str | None,
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Add the event of a change to the change's own session (committed with it)."""
    actor = actor_of(session)
    event = AuditEvent(
        actor_kind=actor.kind,
        actor=actor.name,
        address=actor.address,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        details=scrub(dict(details or {})),
        request_id=actor.request_id,
    )
    session.add(event)
    remember(session, event)
    return event


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """GET /audit's filters; every one given must hold. ``action`` ending in ``.*`` is
    a prefix (``post.*``: every action on posts)."""

    actor: str | None = None
    actor_kind: ActorKind | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    since: datetime | None = None  # at ≥ since
    until: datetime | None = None  # at < until

    def where(self) -> list[ColumnElement[bool]]:
        if self.since and self.until and self.since >= self.until:
            raise Invalid("'from' must be before 'to'")
        if self.object_id is not None and self.object_type is None:
            raise Invalid("object_id needs object_type (ids of bots and posts overlap)")
        clauses: list[ColumnElement[bool]] = []
        if self.actor is not None:
            clauses.append(AuditEvent.actor == self.actor)
        if self.actor_kind is not None:
            clauses.append(AuditEvent.actor_kind == self.actor_kind)
        if self.action is not None and self.action.endswith(".*"):
            prefix = self.action[:-1].replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
            clauses.append(AuditEvent.action.like(prefix + "%", escape="\\"))
        elif self.action is not None:
            clauses.append(AuditEvent.action == self.action)
        if self.object_type is not None:
            clauses.append(AuditEvent.object_type == self.object_type)
        if self.object_id is not None:
            clauses.append(AuditEvent.object_id == self.object_id)
        if self.since is not None:
            clauses.append(AuditEvent.at >= self.since)
        if self.until is not None:
            clauses.append(AuditEvent.at < self.until)
        return clauses


_COLUMNS = tuple(AuditEvent.__table__.c)
_MANY = TypeAdapter(list[AuditEventOut])


def _page(filters: AuditFilter) -> tuple[Select[Any], Any]:
    base = select(*_COLUMNS).where(*filters.where())
    rows = page_rows(base.order_by(AuditEvent.id.desc()))
    page = select(*row_columns(rows), rows.c[TOTAL]).order_by(rows.c.id.desc())
    return page, base.subquery("counted")


async def table(
    db: AsyncConnection | AsyncSession, filters: AuditFilter, *, limit: int, offset: int
) -> AuditPage:
    """The events that pass ``filters``, newest first, one page."""
    page, counted = _page(filters)
    rows, total = await fetch_page(db, page, limit, offset, counted=counted)
    events = _MANY.validate_python([dict(r._mapping) for r in rows])
    return AuditPage(events=events, total=total, limit=limit, offset=offset)
