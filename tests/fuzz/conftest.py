"""A real ``botmgr api`` process (uvicorn on a free port) for the fuzz tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.db import fresh_database
from tests.harness.env import scoped_env
from tests.harness.processes import ApiProcess, running
from tests.harness.tgemu import TgEmu


@pytest.fixture(scope="session")
def fuzz_api(tgemu: TgEmu, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    # A database of its own: what other tests left (active bots) must not steer the
    # fuzzer, nor what the fuzzer leaves steer them. No worker runs here, so a
    # generated "Prefer: wait=N" must not hold a request open.
    log_path = tmp_path_factory.mktemp("fuzz") / "api.log"
    with (
        fresh_database() as url,
        scoped_env(url, tgemu, BOTMGR_TASK_WAIT_CAP="0") as env,
        running(ApiProcess(env, log_path)) as api,
    ):
        yield api
