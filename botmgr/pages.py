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

from sqlalchemy import ColumnElement, Integer, Row, Select, Subquery, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import FromClause

TOTAL = "page_total"  # the window column; no model field is called so


def page_rows(stmt: Select[*tuple[Any, ...]]) -> Subquery:
    """One page of ``stmt``'s rows (ordered), LIMIT and OFFSET bound per execution, with
    the count over all pages as the column TOTAL: a subquery to join to it what belongs
    to each row. Joined to the page, not to the whole table: a window over the joined
    rows would make PostgreSQL join every row of the table before it counts them."""
    # A window runs before LIMIT/OFFSET: each row of the page carries the full count.
    return (
        stmt.add_columns(func.count().over().label(TOTAL))
        .limit(bindparam("page_limit", type_=Integer))
        .offset(bindparam("page_offset", type_=Integer))
        .subquery("page")
    )


def row_columns(page: Subquery) -> list[ColumnElement[Any]]:
    """The page's own columns, without TOTAL (which ``fetch_page`` wants last)."""
    return [c for c in page.c if c.key != TOTAL]


async def fetch_page(
    db: AsyncConnection | AsyncSession,
    page: Select[*tuple[Any, ...]],
    limit: int,
    offset: int,
    *,
    counted: FromClause,
) -> tuple[Sequence[Row[Any]], int]:
    """The rows of ``page`` and the number of rows of ``counted`` over all pages. ``page``
    selects from ``page_rows(…)`` of an unfiltered select of ``counted``, with the page's
    TOTAL as its last column. Build it once: a statement object remembers its cache key,
    so running the same object skips SQLAlchemy's per-execution cache key walk."""
    # Core: the ORM's execution layer has nothing to add to plain columns. The API reads
    # on a bare connection (deps.ReaderDep); a session (the rule tests) lends its own.
    connection = db if isinstance(db, AsyncConnection) else await db.connection()
    rows = (await connection.execute(page, {"page_limit": limit, "page_offset": offset})).all()
    if rows:
        return rows, int(rows[0][-1])
    # Past the last page no row carries it.
    return rows, (await connection.execute(select(func.count()).select_from(counted))).scalar_one()
