"""List pages (GET /bots/, GET /channels/): one statement of plain columns per page, and
the page's rows validated into their response model in one pydantic call.

Measured with py-spy under ``bench/api.py`` (docs/PERFORMANCE.md): loading ORM entities
(identity map, instance state, attribute instrumentation) for 100 rows, a second query for
what belongs to them and a third for the total, then building each response model in
Python cost most of a list request. Plain rows carry the same values, the total rides on
each row as a window count, and ``TypeAdapter.validate_python`` builds the 100 models in
pydantic's core. The routes still declare the page's response model, so the OpenAPI
schema and the JSON (FastAPI dumps it with the same TypeAdapter machinery) are unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import FromClause

TOTAL = "page_total"  # the window column; no model field is called so


def page_of(stmt: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
    """``stmt`` (ordered) as a page: LIMIT and OFFSET bound per execution, and the total
    as a window column. Build it once: a statement object remembers its cache key, so
    running the same object skips SQLAlchemy's per-execution cache key walk."""
    # A window runs before LIMIT/OFFSET: each row carries the count over all pages.
    return (
        stmt.add_columns(func.count().over().label(TOTAL))
        .limit(bindparam("page_limit"))
        .offset(bindparam("page_offset"))
    )


async def fetch_page(
    db: AsyncConnection | AsyncSession,
    page: Select[*tuple[Any, ...]],
    limit: int,
    offset: int,
    *,
    counted: FromClause,
) -> tuple[Sequence[Row[Any]], int]:
    """The rows of ``page`` (from ``page_of``) and the number of rows of ``counted`` over
    all pages. ``page`` must select from ``counted`` without filtering it."""
    # Core: the ORM's execution layer has nothing to add to plain columns. The API reads
    # on a bare connection (deps.ReaderDep); a session (tests, the console) lends its own.
    connection = db if isinstance(db, AsyncConnection) else await db.connection()
    rows = (await connection.execute(page, {"page_limit": limit, "page_offset": offset})).all()
    if rows:
        return rows, int(rows[0][-1])
    # Past the last page no row carries it.
    return rows, (await connection.execute(select(func.count()).select_from(counted))).scalar_one()
