"""A real ``botmgr api`` process (uvicorn on a free port) for the fuzz tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.resilience.processes import ApiProcess


@pytest.fixture(scope="session")
def fuzz_api(tg_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[ApiProcess]:
    # No worker runs here: a generated "Prefer: wait=N" must not hold a request open.
    env = {**tg_env, "BOTMGR_TASK_WAIT_CAP": "0"}
    api = ApiProcess(env, tmp_path_factory.mktemp("fuzz") / "api.log")
    try:
        api.wait_ready()
        yield api
    finally:
        api.stop()
