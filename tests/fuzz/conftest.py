"""A real ``botmgr api`` process (uvicorn on a free port) for the fuzz tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.service import _drop_prefix, make_env
from tests.fixtures.tgemu import TgEmu
from tests.resilience.processes import ApiProcess, fresh_database


@pytest.fixture(scope="session")
def fuzz_api(tgemu: TgEmu, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    # A database of its own: what other tests left (active bots) must not steer the
    # fuzzer, nor what the fuzzer leaves steer them. No worker runs here, so a
    # generated "Prefer: wait=N" must not hold a request open.
    with fresh_database() as url:
        env = make_env(url, tgemu, BOTMGR_TASK_WAIT_CAP="0")
        api = ApiProcess(env, tmp_path_factory.mktemp("fuzz") / "api.log")
        try:
            api.wait_ready()
            yield api
        finally:
            api.stop()
            _drop_prefix(env["BOTMGR_REDIS_PREFIX"])
