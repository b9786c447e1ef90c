"""The anchor of ``bench/api.py``: the GET /bots/ page (same rows, same JSON bytes) from
the smallest handler one would write by hand — FastAPI, an asyncpg pool, one query, the
JSON built with the standard library and returned as bytes. None of the app's code runs
here (no ORM, no response model, no unit of work), so the app's rate as a ratio of this
one is what the service's own layers cost on this machine, in the same run.

    uvicorn --factory bench.api_anchor:anchor_app [--workers N]

Reads BOTMGR_DATABASE_URL, BOTMGR_AUTH_USERNAME and BOTMGR_AUTH_PASSWORD like the app.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
from fastapi import FastAPI, Request, Response

# The binding counts in the app's order (models.BindingStatus), every status present.
STATUSES = ("new", "active", "invalid", "inactive")
QUERY = f"""
SELECT b.id, b.tg_id, b.alias, b.description, b.name, b.username, b.first_name,
       b.token_tail, b.status::text AS status, b.status_reason, b.last_checked_at,
       b.created_at, b.updated_at, count(*) OVER () AS total,
       {", ".join(f"coalesce(c.{s}, 0) AS n_{s}" for s in STATUSES)}
FROM bots b
LEFT JOIN LATERAL (
    SELECT {", ".join(f"count(*) FILTER (WHERE status = '{s}') AS {s}" for s in STATUSES)}
    FROM bindings WHERE bot_id = b.id
) c ON true
ORDER BY b.id LIMIT $1 OFFSET $2
"""


def _when(value: datetime | None) -> str | None:
    # pydantic writes UTC as "Z"; the anchor must send the app's bytes.
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _row(r: asyncpg.Record) -> dict[str, Any]:
    tail = r["token_tail"]
    return {
        "id": r["id"],
        "tg_id": r["tg_id"],
        "alias": r["alias"],
        "description": r["description"],
        "name": r["name"],
        "username": r["username"],
        "bot_link": f"@{r['username']}",
        "first_name": r["first_name"],
        "token": f"{r['tg_id']}:****…{tail}" if tail else f"{r['tg_id']}:****",
        "status": r["status"],
        "status_reason": r["status_reason"],
        "last_checked_at": _when(r["last_checked_at"]),
        "created_at": _when(r["created_at"]),
        "updated_at": _when(r["updated_at"]),
        "bindings": {s: r[f"n_{s}"] for s in STATUSES},
    }


def anchor_app() -> FastAPI:
    dsn = os.environ["BOTMGR_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    credentials = f"{os.environ['BOTMGR_AUTH_USERNAME']}:{os.environ['BOTMGR_AUTH_PASSWORD']}"
    expected = f"Basic {base64.b64encode(credentials.encode()).decode()}".encode()
    pools: list[asyncpg.Pool] = []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pools.append(await asyncpg.create_pool(dsn, min_size=2, max_size=10))
        try:
            yield
        finally:
            await pools[0].close()

    app = FastAPI(lifespan=lifespan, openapi_url=None)

    @app.get("/bots/")
    async def bots(request: Request, limit: int = 100, offset: int = 0) -> Response:
        # The same refusal rule as the app, at its cost: a constant-time comparison.
        given = request.headers.get("authorization", "").encode()
        if not secrets.compare_digest(given, expected):
            return Response(status_code=401)
        rows = await pools[0].fetch(QUERY, limit, offset)
        page = {
            "status": "ok",
            "data": [_row(r) for r in rows],
            "total": rows[0]["total"] if rows else 0,
            "limit": limit,
            "offset": offset,
        }
        body = json.dumps(page, ensure_ascii=False, separators=(",", ":"))
        return Response(body.encode(), media_type="application/json")

    return app
