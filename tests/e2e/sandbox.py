"""``botmgr sandbox`` as a newcomer runs it — embedded PostgreSQL and Redis, tgemu, the
service, nginx when installed — but on free ports and with a data directory of its own,
and stopped as they stop it: Ctrl-C (SIGINT to its process group, as a terminal sends it)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from botmgr.sandbox.embedded import answers
from tests.e2e.stack import alive, processes_mentioning
from tests.harness.env import ROOT
from tests.harness.processes import free_ports

PORT_FLAGS = ("http", "api", "tg", "control", "postgres", "redis")
START_TIMEOUT = 180.0
STOP_TIMEOUT = 30.0


@dataclass
class Sandbox:
    data: Path  # --data: everything it keeps
    ports: dict[str, int]
    extra: list[str] = field(default_factory=list)  # more options (--no-nginx …)
    log: Path = field(init=False)
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.log = self.data.parent / "sandbox.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"

    @property
    def control(self) -> str:
        return f"http://127.0.0.1:{self.ports['control']}"

    def argv(self) -> list[str]:
        ports = [a for name, port in self.ports.items() for a in (f"--{name}-port", str(port))]
        return [sys.executable, "-m", "botmgr.cli", "sandbox", "--data", str(self.data), *ports]

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def child_pids(self) -> list[int]:
        return [int(p) for p in re.findall(r"started \(pid=(\d+)\)", self.output())]

    def tgemu_ports(self) -> list[int]:
        """Every port tgemu listened on (its DCs other than 2 take free ones)."""
        found = re.search(r"tgemu ready .* dcs=(\S+)", self.output())
        return [int(a.rsplit(":", 1)[1]) for a in found[1].split(",")] if found else []

    def start(self) -> None:
        # Started from its own process group, as a shell runs a foreground job.
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [*self.argv(), *self.extra],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_for(self, text: str, timeout: float = START_TIMEOUT) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.proc.poll() is not None:
                raise RuntimeError(f"botmgr sandbox exited:\n{self.output()[-4000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {text!r} in {timeout:g} s:\n{self.output()[-4000:]}")
            time.sleep(0.3)

    def ctrl_c(self) -> int | None:
        """SIGINT to the process group, as a terminal's Ctrl-C; its exit status (None:
        never started, or still running)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                return None
        return self.proc.returncode

    def leftovers(self) -> tuple[list[int], list[int]]:
        """(processes still alive, ports still listening) once it has stopped. (A port
        may stay unbindable for a while: TIME_WAIT of the connections it served.)"""
        time.sleep(0.3)
        pids = [p for p in self.child_pids() if alive(p)] + processes_mentioning(str(self.data))
        used = {*self.ports.values(), *self.tgemu_ports()}
        ports = sorted(p for p in used if answers("127.0.0.1", p, timeout=0.5))
        return pids, ports

    def kill(self) -> None:
        """Whatever is left after a failed test (never the machine's own servers)."""
        for pid in [*self.child_pids(), *processes_mentioning(str(self.data))]:
            if alive(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def make_sandbox(*extra: str) -> Sandbox:
    base = Path(tempfile.mkdtemp(prefix="botmgr-sandbox-"))
    base.chmod(0o755)  # as root, PostgreSQL's own account passes through to its data
    return Sandbox(base / "data", dict(zip(PORT_FLAGS, free_ports(6), strict=True)), list(extra))


def remove(sandbox: Sandbox) -> None:
    shutil.rmtree(sandbox.data.parent, ignore_errors=True)
