"""``/healthz`` (liveness, anonymous, cheap) and ``/readyz`` (readiness, authenticated).

``/healthz`` answers without credentials — compose, the image's HEALTHCHECK and nginx's
tests ask it — so anyone may call it as often as they like: it answers the last probe of
PostgreSQL and Redis, made at most once every ``HEALTH_TTL`` seconds per process (hits
that arrive while a probe runs wait for that one probe), never a round trip per hit.
``/readyz`` probes every time, and also says whether the database is at the code's
migration head; it needs the operator's credentials.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from botmgr.security import Operator

HEALTH_TTL = 5.0  # seconds a /healthz answer is reused (compose asks every 15 s)
PROBE_TIMEOUT = 2.0

router = APIRouter(tags=["health"])


class HealthOut(BaseModel):
    status: Literal["ok", "error"]
    database: str  # "ok" or "unreachable (…)"
    redis: str


class ReadyOut(HealthOut):
    migrations: str  # "ok" or what is wrong: "behind (database …, code …)"


class HealthCache:
    """The last probe's answer, reused for ``ttl`` seconds; one probe at a time."""

    def __init__(self, ttl: float = HEALTH_TTL) -> None:
        self.ttl = ttl
        self._answer: HealthOut | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    def _fresh(self) -> HealthOut | None:
        if self._answer is not None and time.monotonic() - self._at < self.ttl:
            return self._answer
        return None

    async def get(self, app: FastAPI) -> HealthOut:
        if answer := self._fresh():
            return answer
        async with self._lock:
            if answer := self._fresh():  # probed while this hit waited for the lock
                return answer
            self._answer = await _health(app)
            self._at = time.monotonic()
            return self._answer


async def _probe(coro: Any) -> str:
    try:
        await asyncio.wait_for(coro, timeout=PROBE_TIMEOUT)
        return "ok"
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"


async def _database(app: FastAPI) -> None:
    async with app.state.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def _health(app: FastAPI) -> HealthOut:
    database = await _probe(_database(app))
    redis = await _probe(app.state.redis.ping())
    status: Literal["ok", "error"] = "ok" if database == redis == "ok" else "error"
    return HealthOut(status=status, database=database, redis=redis)


@functools.cache
def code_heads() -> frozenset[str]:
    """The migration heads of the code this process runs (read once: they cannot change)."""
    from alembic.script import ScriptDirectory

    from botmgr.cli import migrations_dir

    return frozenset(ScriptDirectory(str(migrations_dir())).get_heads())


async def _migrations(app: FastAPI) -> str:
    try:
        heads = code_heads()
    except SystemExit:  # migrations_dir() found none
        return "unknown (no migrations/ directory beside the code)"
    try:
        async with app.state.engine.connect() as conn:
            rows = await asyncio.wait_for(
                conn.execute(text("SELECT version_num FROM alembic_version")), PROBE_TIMEOUT
            )
            found = frozenset(rows.scalars())
    except Exception as exc:
        return f"unreadable ({type(exc).__name__})"
    if found == heads:
        return "ok"
    return f"behind (database {sorted(found)}, code {sorted(heads)}): run botmgr migrate"


def _answer(model: HealthOut) -> Any:
    if model.status == "ok":
        return model
    return JSONResponse(model.model_dump(), 503)


@router.get("/healthz", response_model=HealthOut, responses={503: {"model": HealthOut}})
async def healthz(request: Request) -> Any:
    cache: HealthCache = request.app.state.health
    return _answer(await cache.get(request.app))


@router.get("/readyz", response_model=ReadyOut, responses={503: {"model": ReadyOut}})
async def readyz(request: Request, _: Operator) -> Any:
    health = await _health(request.app)
    migrations = await _migrations(request.app)
    ok = health.status == "ok" and migrations == "ok"
    fields = {**health.model_dump(), "status": "ok" if ok else "error"}
    return _answer(ReadyOut(**fields, migrations=migrations))
