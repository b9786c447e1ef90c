"""How many API processes ``botmgr api`` starts, and each one's part of the API's
database connections."""

from __future__ import annotations

import pytest

from botmgr import settings as settings_module
from botmgr.db import API_CONNECTIONS, API_MIN_PER_PROCESS, api_pool
from botmgr.settings import Settings, share


def make(**values: object) -> Settings:
    return Settings(_env_file=None, dev=True, **values)  # type: ignore[call-arg]


def test_zero_means_one_process_per_usable_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings_module.os, "sched_getaffinity", lambda _pid: {0, 2, 5})
    assert make().api_processes == 3
    assert make(api_workers=7).api_processes == 7


def test_one_process_keeps_the_whole_pool() -> None:
    assert api_pool(1) == API_CONNECTIONS == 30


@pytest.mark.parametrize("processes", range(1, 33))
def test_processes_split_the_pool_instead_of_multiplying_it(processes: int) -> None:
    per_process = api_pool(processes)
    assert per_process >= API_MIN_PER_PROCESS
    total = processes * per_process
    assert total >= API_CONNECTIONS  # never less room than one process had
    # Beyond rounding up, only the floor per process adds connections.
    assert total < API_CONNECTIONS + processes or per_process == API_MIN_PER_PROCESS


@pytest.mark.parametrize(
    ("total", "parts", "at_least", "expected"),
    [
        (2, 1, 1, 2),
        (2, 2, 1, 1),
        (2, 3, 1, 1),
        (5, 2, 1, 3),
        (30, 8, 6, 6),
    ],
)
def test_share_rounds_up_and_keeps_the_floor(
    total: int, parts: int, at_least: int, expected: int
) -> None:
    assert share(total, parts, at_least) == expected
