"""Idempotency keys, Stripe's ``Idempotency-Key``: the first request with a key claims it
and keeps the answer it got; a retry with the same key and the same request gets that
answer again instead of doing the work twice.

The claim is a row written in the request's own unit of work, before the work: the key
exists exactly when the work was committed, and a crash or a refusal rolls both back. A
second request with the same key meets the first's uncommitted row in the unique index
and waits there (at most ``CLAIM_WAIT``) until the first commits — then it replays its
answer — or rolls back — then it claims the key and runs itself.

A key is one per route (``scope``) and operator (``principal``); it is kept for
``BOTMGR_IDEMPOTENCY_TTL_HOURS``, after which the same key claims afresh.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.errors import Conflict, Invalid
from botmgr.models import IdempotencyKey

#: How long a request waits for another one in flight with its key before it is
#: answered 409: longer than a creating route's transaction takes, short of a client's
#: timeout.
CLAIM_WAIT = "5s"
#: Expired keys each claim deletes besides its own: bounded, so a backlog (after an
#: outage, say) is worked off across requests instead of inside one.
PURGE_BATCH = 100
LOCK_NOT_AVAILABLE = "55P03"

DIFFERENT_REQUEST = (
    "Idempotency-Key was already used with a different request on this route: "
    "a key may only be retried with the same request; send a new key for a new request"
)
IN_PROGRESS = "a request with this Idempotency-Key is in progress; retry later"


@dataclass(frozen=True, slots=True)
class KeyedRequest:
    scope: str  # "POST /messages"
    principal: str
    key: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Answer:
    """A response as it was sent: replayed byte for byte, or, naming a task, as the
    answer about that same task."""

    status_code: int
    headers: list[tuple[str, str]]
    body: bytes
    task_id: str | None = None


@dataclass(frozen=True, slots=True)
class Claimed:
    """The key is this request's: it runs, and ``record`` keeps its answer."""

    key_id: int


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """What the request asks for. A JSON body counts by its value, so a retry that
    serialises the same body differently (spacing, key order) is the same request."""
    try:
        content = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    except ValueError:
        content = body.hex()
    canonical = json.dumps([method, path, sorted(query.split("&")), content])
    return hashlib.sha256(canonical.encode()).hexdigest()


async def claim(
    session: AsyncSession, request: KeyedRequest, *, ttl: timedelta
) -> Claimed | Answer:
    """Claim the key for ``request`` in the session's transaction, or the answer of the
    request that holds it. 422: the key was used for another request; 409: the request
    holding it is still running after ``CLAIM_WAIT``."""
    await purge_expired(session, limit=PURGE_BATCH)
    row = insert(IdempotencyKey).values(
        scope=request.scope,
        principal=request.principal,
        key=request.key,
        fingerprint=request.fingerprint,
        headers=[],
        expires_at=func.now() + ttl,
    )
    # An expired key is taken over as if it were new, in the same statement.
    taken = row.on_conflict_do_update(
        constraint="uq_idempotency_keys_scope_key",
        set_={
            "fingerprint": row.excluded.fingerprint,
            "status_code": None,
            "headers": [],
            "body": None,
            "task_id": None,
            "created_at": func.now(),
            "expires_at": row.excluded.expires_at,
        },
        where=IdempotencyKey.expires_at <= func.now(),
    ).returning(IdempotencyKey.id)
    await session.execute(text(f"SET LOCAL lock_timeout = '{CLAIM_WAIT}'"))
    try:
        key_id = (await session.execute(taken)).scalar_one_or_none()
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise Conflict(IN_PROGRESS) from exc
        raise
    # The route's own locks (arbitration, row locks) wait as long as they always did.
    await session.execute(text("SET LOCAL lock_timeout = DEFAULT"))
    if key_id is not None:
        return Claimed(key_id)
    held = (
        await session.execute(
            select(IdempotencyKey).where(
                IdempotencyKey.scope == request.scope,
                IdempotencyKey.principal == request.principal,
                IdempotencyKey.key == request.key,
            )
        )
    ).scalar_one()
    if held.fingerprint != request.fingerprint:
        raise Invalid(DIFFERENT_REQUEST)
    if held.status_code is None or held.body is None:
        # Claim and answer commit together, so this is not seen; were it, there would
        # be no answer to replay.
        raise Conflict(IN_PROGRESS)
    headers = [(str(name), str(value)) for name, value in held.headers]
    return Answer(held.status_code, headers, held.body, held.task_id)


async def record(session: AsyncSession, claimed: Claimed, answer: Answer) -> None:
    """Keep ``answer`` on the claimed key, in the transaction that does the work."""
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == claimed.key_id)
        .values(
            status_code=answer.status_code,
            headers=[list(pair) for pair in answer.headers],
            body=answer.body,
            task_id=answer.task_id,
        )
    )


async def release(session: AsyncSession, claimed: Claimed) -> None:
    """Forget the key: the caller was answered an error after all (the queue refused the
    work's task), so its retry with the key must run again, not replay a 202."""
    await session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == claimed.key_id))


async def purge_expired(session: AsyncSession, *, limit: int | None = None) -> int:
    """Delete keys past their TTL (at most ``limit``); returns how many. Rows another
    transaction holds are skipped, so purging never waits nor makes anyone wait. Each
    claim purges a batch; a periodic job (the reconciler) may call it for the rest."""
    expired = (
        select(IdempotencyKey.id)
        .where(IdempotencyKey.expires_at <= func.now())
        .with_for_update(skip_locked=True)
    )
    if limit is not None:
        expired = expired.limit(limit)
    result = await session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.id.in_(expired.scalar_subquery()))
    )
    return int(getattr(result, "rowcount", 0) or 0)
