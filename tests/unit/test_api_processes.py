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


@pytest.mark.parametrize(
    ("argv", "setting", "expected"),
    [
        ([], "0", 3),  # one per usable CPU
        ([], "5", 5),
        (["--workers", "2"], "5", 2),  # the flag wins
    ],
)
def test_botmgr_api_starts_the_resolved_count_and_tells_its_processes(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], setting: str, expected: int
) -> None:
    import uvicorn

    from botmgr import cli
    from botmgr.settings import get_settings

    runs: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: runs.append({"app": app, **kw}))
    monkeypatch.setattr(settings_module.os, "sched_getaffinity", lambda _pid: {0, 1, 2})
    monkeypatch.setenv("BOTMGR_DEV", "1")
    monkeypatch.setenv("BOTMGR_API_WORKERS", setting)
    get_settings.cache_clear()
    try:
        cli.main(["api", "--port", "1", *argv])
        # Each process builds its app from the environment: it must read the same N.
        assert get_settings().api_processes == expected
    finally:
        get_settings.cache_clear()
    assert [(r["app"], r["workers"], r["factory"]) for r in runs] == [
        ("botmgr.app:create_app", expected, True)
    ]


def test_botmgr_api_refuses_zero_workers(capsys: pytest.CaptureFixture[str]) -> None:
    from botmgr import cli

    with pytest.raises(SystemExit):
        cli.main(["api", "--workers", "0"])
    assert "must be at least 1" in capsys.readouterr().err
