"""The service as real subprocesses (``botmgr worker``, ``api``, ``beat``), each logging to
a file a test can read, and free loopback ports to start things on."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, TypeVar

import httpx

from tests.harness.env import ROOT, USER


def wait_http(
    url: str, statuses: Sequence[int], process: subprocess.Popen[bytes], timeout: float = 60
) -> None:
    """Until ``url`` answers one of ``statuses``; raises RuntimeError if ``process``
    exits first or ``timeout`` runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code in statuses:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer {list(statuses)} in {timeout:g}s")
        time.sleep(0.1)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports: all held open at once, so none is handed out twice."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_port(port: int, timeout: float) -> None:
    """Block until something accepts connections on the loopback ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def botmgr_argv(*args: str) -> list[str]:
    """``botmgr ARGS`` run by this interpreter (the console script may not be on PATH)."""
    return [sys.executable, "-m", "botmgr.cli", *args]


class LoggedProcess:
    """A subprocess run from the project root with ``env`` on top of this environment;
    stdout and stderr go to ``log_path``, which ``log()`` reads back."""

    def __init__(self, env: dict[str, str], log_path: Path, argv: Sequence[str]) -> None:
        self.env = env  # what a replacement of this process starts with
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            list(argv),
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM, and SIGKILL if it has not exited 20 s later."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class BotmgrProcess(LoggedProcess):
    """A real ``botmgr ARGS`` subprocess."""

    def __init__(self, env: dict[str, str], log_path: Path, args: Sequence[str]) -> None:
        super().__init__(env, log_path, botmgr_argv(*args))


class WorkerProcess(BotmgrProcess):
    """``botmgr worker``; ``loglevel`` e.g. "DEBUG" where a test reads what it logs."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        concurrency: int = 8,
        loglevel: str | None = None,
    ) -> None:
        level = ["--loglevel", loglevel] if loglevel else []
        super().__init__(env, log_path, [*level, "worker", f"--concurrency={concurrency}"])

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while " ready." not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: the worker gets no chance to finish or requeue what it holds."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log.close()


class ApiProcess(LoggedProcess):
    """``botmgr api`` on a free loopback port; ``url`` and ``auth`` reach it over HTTP.

    A subclass serves something else on the same terms by overriding ``command``.
    """

    def __init__(self, env: dict[str, str], log_path: Path, loglevel: str = "INFO") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.auth = (USER, env["BOTMGR_AUTH_PASSWORD"])
        super().__init__(env, log_path, self.command(loglevel))

    def command(self, loglevel: str) -> list[str]:
        """The argv that serves the app on ``self.port``."""
        return botmgr_argv("--loglevel", loglevel, "api", "--port", str(self.port))

    def wait_ready(self, timeout: float = 60) -> None:
        """Until /healthz answers at all (503 too: a dependency may be down on purpose)."""
        try:
            wait_http(f"{self.url}/healthz", (200, 503), self.process, timeout)
        except RuntimeError as exc:
            raise RuntimeError(f"api did not start ({exc}):\n{self.log()[-3000:]}") from None


class BeatProcess(BotmgrProcess):
    """``botmgr beat`` (redbeat: schedules live in Redis)."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        super().__init__(env, log_path, ["beat"])

    def wait_ready(self, timeout: float = 60) -> None:
        """Until beat holds redbeat's lock: from then on it has written its schedules."""
        deadline = time.monotonic() + timeout
        while self.log().count("Acquired lock") < 1:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"beat did not start:\n{self.log()[-3000:]}")
            time.sleep(0.1)


class Startable(Protocol):
    def wait_ready(self, timeout: float = 60) -> None: ...
    def stop(self) -> None: ...


P = TypeVar("P", bound=Startable)


@contextmanager
def running(process: P) -> Iterator[P]:
    """``process`` once it is ready, stopped when the block ends (also when it never got
    ready: its log then says why)."""
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()
