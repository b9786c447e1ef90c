"""A real ``botmgr api`` process (uvicorn on a free port) for the fuzz tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.db import fresh_database
from tests.harness.env import drop_redis_prefix, make_env
from tests.harness.processes import ApiProcess, running
from tests.harness.tgemu import TgEmu


@pytest.fixture(scope="session")
def fuzz_api(tgemu: TgEmu, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    # A database of its own: what other tests left (active bots) must not steer the
    # fuzzer, nor what the fuzzer leaves steer them. No worker runs here, so a
    # generated "Prefer: wait=N" must not hold a request open.
    with fresh_database() as url:
        env = make_env(url, tgemu, BOTMGR_TASK_WAIT_CAP="0")
        try:
            with running(ApiProcess(env, tmp_path_factory.mktemp("fuzz") / "api.log")) as api:
                yield api
        finally:
            drop_redis_prefix(env["BOTMGR_REDIS_PREFIX"])
