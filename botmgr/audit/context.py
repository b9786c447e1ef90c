"""Who is acting, carried by the unit of work to the service functions that record.

The API's unit (``deps.UnitDep``) and the console's (``admin.core.unit``) are opened with
an :class:`Actor` made from the request: the operator's username (HTTP Basic, or the
console session), the client's address as ``botmgr.throttle.client_address`` gives it
(the peer, or nginx's X-Forwarded-For when the peer is in BOTMGR_FORWARDED_ALLOW_IPS),
and the request id nginx sets. The unit keeps it in its session's ``info``, so a service
that takes the unit — or only ``unit.session`` — records with the actor and in the same
transaction as the change, without every service signature growing a parameter. A
session opened without an actor (the worker, a command) records as ``system``.

If the broker then refuses a job of the unit (the change is committed but a task of it
never queued: ``uow.publish``), the unit's events are marked so in a transaction of
their own — the log says what was committed, and that its work did not start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from botmgr.models import ActorKind, AuditEvent
from botmgr.throttle import client_address

_ACTOR = "botmgr.audit.actor"
_WRITTEN = "botmgr.audit.written"
# nginx's $request_id is 32 hex digits; anything else a client sent is kept only if it
# is as plain (it is a correlation id shown in the console, not trusted for anything).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
NOT_SCHEDULED = "committed, but the task queue refused its task: not started"


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    name: str
    address: str | None = None
    request_id: str | None = None


SYSTEM = Actor(ActorKind.system, "system")


def request_id(connection: HTTPConnection) -> str | None:
    given = connection.headers.get("x-request-id")
    return given if given is not None and _REQUEST_ID.fullmatch(given) else None


def from_request(connection: HTTPConnection, kind: ActorKind, name: str) -> Actor:
    """The operator ``name`` acting through ``connection`` (API or console)."""
    return Actor(kind, name[:255], client_address(connection)[:255], request_id(connection))


def bind(session: AsyncSession, actor: Actor) -> None:
    session.info[_ACTOR] = actor


def actor_of(session: AsyncSession) -> Actor:
    actor = session.info.get(_ACTOR)
    return actor if isinstance(actor, Actor) else SYSTEM


def remember(session: AsyncSession, event: AuditEvent) -> None:
    """Note an event the session's transaction writes (for ``on_refused``)."""
    session.info.setdefault(_WRITTEN, []).append(event)


def written_ids(session: AsyncSession) -> list[int]:
    """The ids of the events committed by the session (after its commit)."""
    events: list[AuditEvent] = session.info.pop(_WRITTEN, [])
    return [e.id for e in events if e.id is not None]


async def mark_not_scheduled(session: AsyncSession, *, ids: list[int]) -> None:
    """The compensation ``uow`` runs when the broker refused a job of the unit."""
    rows = await session.execute(select(AuditEvent).where(AuditEvent.id.in_(ids)))
    for event in rows.scalars():
        event.details = {**event.details, "outcome": NOT_SCHEDULED}
