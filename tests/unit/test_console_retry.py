"""A console action whose transaction PostgreSQL aborted to end a deadlock runs again
(admin.core.in_unit); any other database error goes up at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError

from admin import core
from botmgr.db import is_aborted


class _Orig(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _error(sqlstate: str) -> DBAPIError:
    return DBAPIError("UPDATE …", {}, _Orig(sqlstate))


@pytest.fixture
def units(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    opened: list[int] = []

    @asynccontextmanager
    async def unit(request: Any) -> AsyncIterator[str]:
        opened.append(len(opened))
        yield f"unit {len(opened)}"

    monkeypatch.setattr(core, "unit", unit)
    return opened


def test_which_errors_are_aborts() -> None:
    assert is_aborted(_error("40P01")) and is_aborted(_error("40001"))
    assert not is_aborted(_error("23505")) and not is_aborted(ValueError("40P01"))


async def test_a_deadlock_victim_runs_again_in_a_new_unit(units: list[int]) -> None:
    failures = [_error("40P01")]

    async def work(unit: Any) -> str:
        if failures:
            raise failures.pop()
        return f"done in {unit}"

    assert await core.in_unit(object(), work) == "done in unit 2"  # type: ignore[arg-type]
    assert units == [0, 1]


async def test_other_errors_and_endless_deadlocks_go_up(units: list[int]) -> None:
    async def unique(unit: Any) -> str:
        raise _error("23505")

    with pytest.raises(DBAPIError):
        await core.in_unit(object(), unique)  # type: ignore[arg-type]
    assert units == [0]

    async def deadlocked(unit: Any) -> str:
        raise _error("40P01")

    with pytest.raises(DBAPIError):
        await core.in_unit(object(), deadlocked)  # type: ignore[arg-type]
    assert len(units) == 1 + core.ABORTED_RUNS
