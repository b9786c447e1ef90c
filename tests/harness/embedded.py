"""The test session's PostgreSQL and Redis when none answers where the settings point: an
embedded one each (botmgr/sandbox/embedded.py, the ``sandbox`` extra), started once per
process in a temp directory on a free port and stopped when the process exits. Where both
servers run (CI), nothing is started and nothing changes.

Where the settings point: BOTMGR_TEST_PG / BOTMGR_TEST_REDIS if set, else the server of
BOTMGR_DATABASE_URL / BOTMGR_REDIS_URL if set, else 127.0.0.1:5432 and :6379.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url

from botmgr.sandbox.embedded import (
    EmbeddedPostgres,
    EmbeddedRedis,
    MissingServer,
    Server,
    answers,
    start,
    stop,
)

NOTES: list[str] = []  # what was started, said once at the top of the session


def configured_pg() -> str:
    """libpq URL of the maintenance database of the PostgreSQL the settings name."""
    if dsn := os.environ.get("BOTMGR_TEST_PG"):
        return dsn
    if url := os.environ.get("BOTMGR_DATABASE_URL"):
        server = make_url(url).set(drivername="postgresql", database="postgres")
        return server.render_as_string(hide_password=False)
    return "postgresql://postgres@127.0.0.1:5432/postgres"


def configured_redis() -> str:
    return (
        os.environ.get("BOTMGR_TEST_REDIS")
        or os.environ.get("BOTMGR_REDIS_URL")
        or "redis://127.0.0.1:6379/0"
    )


def _address(url: str, default_port: int) -> tuple[str, int]:
    parsed = make_url(url)
    return parsed.host or "127.0.0.1", parsed.port or default_port


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Started:
    """The servers this process started, stopped (and their directory removed) at exit."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.running: list[tuple[Server, subprocess.Popen[bytes], IO[bytes]]] = []
        atexit.register(self.stop)

    def start(self, server: Server) -> None:
        log = (self.workdir / f"{server.name}.log").open("ab")
        try:
            self.running.append((server, start(server, log), log))
        except MissingServer as exc:
            raise RuntimeError(
                f"{exc}: no {server.name} answers where the tests' settings point, and the "
                "embedded one the tests would start instead is not installed"
            ) from None

    def stop(self) -> None:
        for server, process, log in self.running:
            stop(server, process)
            log.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def servers() -> tuple[str, str]:
    """(PostgreSQL maintenance DSN, Redis URL) for this test process: the configured ones
    if they answer, else embedded ones (also exported as BOTMGR_TEST_PG / _REDIS, so
    processes the tests start find the same)."""
    dsn, url = configured_pg(), configured_redis()
    pg_missing = not answers(*_address(dsn, 5432))
    redis_missing = not answers(*_address(url, 6379))
    if not (pg_missing or redis_missing):
        return dsn, url
    workdir = Path(tempfile.mkdtemp(prefix="botmgr-test-servers-"))
    workdir.chmod(0o755)  # PostgreSQL's own account (as root) passes through
    started = _Started(workdir)
    if pg_missing:
        pg = EmbeddedPostgres(workdir / "postgres", _free_port(), durable=False)
        started.start(pg)
        NOTES.append(
            f"no PostgreSQL answers at {make_url(dsn).render_as_string(hide_password=True)}: "
            f"the tests use an embedded one on port {pg.port} (log: {workdir}/postgres.log)"
        )
        dsn = os.environ["BOTMGR_TEST_PG"] = pg.dsn
    if redis_missing:
        rds = EmbeddedRedis(workdir / "redis", _free_port(), durable=False)
        started.start(rds)
        NOTES.append(
            f"no Redis answers at {make_url(url).render_as_string(hide_password=True)}: "
            f"the tests use an embedded one on port {rds.port}"
        )
        url = os.environ["BOTMGR_TEST_REDIS"] = rds.url
    return dsn, url
