"""Where the shared PostgreSQL and Redis are, and the BOTMGR_* environment a test or a
benchmark gives the service: every run gets its own Redis key prefix and credentials, so
runs sharing the servers never see each other's keys. Where no server answers, embedded
ones are started for the run (tests/harness/embedded.py)."""

from __future__ import annotations

import secrets
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from cryptography.fernet import Fernet

from botmgr.settings import Settings
from tests.harness.embedded import servers

PG_ADMIN_DSN, REDIS_URL = servers()
ROOT = Path(__file__).resolve().parents[2]  # the project root: processes run from here
USER = "operator"  # the operator's username in every environment ``make_env`` builds
#: Short waits for a stack whose tests watch the due-time dispatch and redeliveries act
#: (make_env(..., **SHORT_WAITS)): a lost task is redelivered or republished in seconds.
SHORT_WAITS = {
    "BOTMGR_CELERY_VISIBILITY_TIMEOUT": "5",
    "BOTMGR_MAX_COUNTDOWN_SECONDS": "2",
    "BOTMGR_RECONCILE_EVERY_SECONDS": "2",
    "BOTMGR_RECONCILE_GRACE_SECONDS": "4",
    "BOTMGR_RETRY_UNREACHABLE_SECONDS": "1",
}


def pg_url(dsn: str, database: str) -> str:
    """The SQLAlchemy (asyncpg) URL of ``database`` on the server of the libpq ``dsn``."""
    base = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{database}"


def drop_redis_prefix(prefix: str, url: str = REDIS_URL) -> None:
    """Delete every key under ``prefix``: what a run leaves in the shared Redis."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


def make_env(database_url: str, tg: Any | None = None, **extra: str) -> dict[str, str]:
    """A complete BOTMGR_* environment with its own Redis key prefix.

    ``tg``: anything with ``host``, ``port`` and ``public_key_path`` (a TgEmu, or a proxy
    in front of one) that the service should take for Telegram; ``extra`` overrides.
    """
    env = {
        "BOTMGR_DATABASE_URL": database_url,
        "BOTMGR_REDIS_URL": REDIS_URL,
        "BOTMGR_REDIS_PREFIX": f"botmgr-test-{uuid.uuid4().hex[:12]}:",
        "BOTMGR_AUTH_USERNAME": USER,
        "BOTMGR_AUTH_PASSWORD": secrets.token_urlsafe(16),
        "BOTMGR_SECRET_KEY": Fernet.generate_key().decode(),
        "BOTMGR_TG_API_ID": "1",
        "BOTMGR_TG_API_HASH": "tgemu",
        "BOTMGR_CELERY_VISIBILITY_TIMEOUT": "10",
        "BOTMGR_TASK_WAIT_CAP": "30",
        # One API process per test (not one per CPU): tests share 2 cores, and what they
        # read (logs, timings) is one process's; tests/integration/test_cli.py runs more.
        "BOTMGR_API_WORKERS": "1",
        # Auth matrices and the fuzzer send wrong credentials by the dozen from one
        # address, which is not what they test; tests/security/test_login_throttle.py
        # sets the production limit.
        "BOTMGR_LOGIN_MAX_FAILURES": "100000",
        # Its own metrics directory: GET /metrics adds up only this run's processes.
        "BOTMGR_METRICS_DIR": str(Path(tempfile.gettempdir()) / f"botmgr-test-{uuid.uuid4().hex}"),
    }
    if tg is not None:
        env["BOTMGR_TG_SERVER"] = f"{tg.host}:{tg.port}"
        env["BOTMGR_TG_PUBLIC_KEY"] = str(tg.public_key_path)
    env.update(extra)
    return env


@contextmanager
def scoped_env(database_url: str, tg: Any | None = None, **extra: str) -> Iterator[dict[str, str]]:
    """``make_env(...)`` whose Redis keys are dropped when the block ends, so the shared
    Redis does not fill up with the queues and schedules of finished runs."""
    env = make_env(database_url, tg, **extra)
    try:
        yield env
    finally:
        drop_redis_prefix(env["BOTMGR_REDIS_PREFIX"])
        shutil.rmtree(env["BOTMGR_METRICS_DIR"], ignore_errors=True)


def settings_from(env: dict[str, str]) -> Settings:
    """The Settings a process started with ``env`` would read (no .env file consulted)."""
    values = {
        k.removeprefix("BOTMGR_").lower(): v for k, v in env.items() if k.startswith("BOTMGR_")
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]
