"""Redis with a password, as compose runs it: a private redis-server with requirepass.
Processes given a URL without (or with a wrong) password end at once with a message
saying what to fix, instead of Celery retrying forever; with it they work; and neither
the password nor any other secret reaches a log or a repr of the settings."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.harness.db import fresh_database
from tests.harness.env import ROOT, make_env, settings_from
from tests.harness.processes import BeatProcess, LoggedProcess, WorkerProcess, botmgr_argv
from tests.harness.servers import PrivateRedis

PASSWORD = "redis-pw-4f1c9e0b7d2a"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path_factory.mktemp("redis"), password=PASSWORD)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def _keys(server: PrivateRedis, prefix: str) -> list[bytes]:
    client = redis.Redis.from_url(server.url)
    try:
        return list(client.scan_iter(match=f"*{prefix}*", count=1000))
    finally:
        client.close()


def _exits(process: LoggedProcess, within: float) -> int:
    try:
        return process.process.wait(timeout=within)
    except subprocess.TimeoutExpired:
        process.stop()
        pytest.fail(f"still running after {within} s (waiting for Redis?):\n{process.log()}")


@pytest.mark.parametrize("how", ["without", "wrong"])
@pytest.mark.parametrize("kind", [WorkerProcess, BeatProcess])
def test_a_refused_password_ends_the_process_with_a_clear_error(
    kind: type[WorkerProcess] | type[BeatProcess],
    how: str,
    redis_server: PrivateRedis,
    database: str,
    tmp_path: Path,
) -> None:
    url = (
        redis_server.url_without_password
        if how == "without"
        else redis_server.url.replace(PASSWORD, "not-the-password")
    )
    process = kind(make_env(database, BOTMGR_REDIS_URL=url), tmp_path / "out.log")
    rc = _exits(process, within=20)
    process.stop()
    log = process.log()
    assert rc != 0
    assert "refused the connection" in log and "BOTMGR_REDIS_URL" in log, log
    assert f"127.0.0.1:{redis_server.port}" in log  # which Redis
    assert "not-the-password" not in log
    assert " ready." not in log and "Acquired lock" not in log


def test_with_the_password_the_worker_works_and_logs_no_secret(
    redis_server: PrivateRedis, database: str, tmp_path: Path
) -> None:
    env = make_env(database, BOTMGR_REDIS_URL=redis_server.url)
    worker = WorkerProcess(env, tmp_path / "worker.log", concurrency=2, loglevel="DEBUG")
    try:
        worker.wait_ready()
        # Queues and registrations written under its prefix: it really talks to Redis.
        deadline = time.monotonic() + 10
        while not _keys(redis_server, env["BOTMGR_REDIS_PREFIX"]):
            assert time.monotonic() < deadline, "the worker wrote nothing to Redis"
            time.sleep(0.2)
    finally:
        worker.stop()
    log = worker.log()
    assert f"redis://:**@127.0.0.1:{redis_server.port}" in log  # Celery's banner, masked
    for secret in (PASSWORD, env["BOTMGR_AUTH_PASSWORD"], env["BOTMGR_SECRET_KEY"]):
        assert secret not in log


def test_settings_repr_and_str_show_no_secret() -> None:
    secrets = {
        "BOTMGR_DATABASE_URL": "postgresql+asyncpg://botmgr:db-pw-7e3a91@db.internal:5432/botmgr",
        "BOTMGR_REDIS_URL": f"redis://:{PASSWORD}@redis.internal:6379/0",
        "BOTMGR_AUTH_PASSWORD": "auth-pw-0c55d2e8a1f4b9",
        "BOTMGR_SECRET_KEY": "secret-key-material-91b2c3d4e5f6a7b8",
        "BOTMGR_TG_API_HASH": "api-hash-5e6f7a8b9c0d",
        "BOTMGR_SECRET_KEYS_OLD": "old-key-material-0f1e2d3c4b5a6978",
    }
    settings = settings_from({**make_env("unused"), **secrets})
    for text in (repr(settings), str(settings), f"{settings!r} {settings}"):
        for value in ("db-pw-7e3a91", PASSWORD, *list(secrets.values())[2:]):
            assert value not in text
        # Where things are stays visible: only the passwords are masked.
        assert "botmgr:***@db.internal:5432/botmgr" in text
        assert "redis://:***@redis.internal:6379/0" in text


def test_a_refused_setting_does_not_echo_its_value() -> None:
    done = subprocess.run(
        botmgr_argv("worker"),
        env={
            "PATH": "/usr/bin:/bin",
            "BOTMGR_AUTH_PASSWORD": "shrtpw7",  # too short: refused
            "BOTMGR_SECRET_KEY": "secret-key-material-91b2c3d4e5f6a7b8",
            "BOTMGR_DATABASE_URL": "postgresql+asyncpg://botmgr:db-pw-7e3a91@127.0.0.1/x",
            "BOTMGR_TG_API_ID": "1",
            "BOTMGR_TG_API_HASH": "api-hash-5e6f7a8b9c0d",
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "BOTMGR_AUTH_PASSWORD" in done.stderr
    for value in ("shrtpw7", "secret-key-material", "db-pw-7e3a91", "api-hash-5e6f"):
        assert value not in done.stderr
