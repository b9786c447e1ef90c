"""The docker-less stack as a newcomer starts it — honcho running Procfile.sandbox with
.env.sandbox (or the plain Procfile) — but on free ports, with its own database, Redis key
prefix, state directory and credentials, and torn down without leftovers."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.harness.db import drop_database
from tests.harness.env import PG_ADMIN_DSN, REDIS_URL, ROOT, drop_redis_prefix, pg_url
from tests.harness.processes import free_ports

START_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0


@dataclass
class Stack:
    root: Path  # the stack's own state directory (VAR_DIR) and logs
    env: dict[str, str]  # what the test gives honcho on top of .env.sandbox
    sandbox: bool = True  # Procfile.sandbox + .env.sandbox, or the plain Procfile alone
    url: str = ""  # nginx, the only entry point
    control: str = ""  # tgemu's control API (the emulator, not the service)
    log: Path = field(init=False)
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.log = self.root / "honcho.log"
        self.url = f"http://127.0.0.1:{self.env['HTTP_PORT']}"
        self.control = f"http://127.0.0.1:{self.env['TGEMU_CONTROL_PORT']}"

    @property
    def auth(self) -> tuple[str, str]:
        return self.env["BOTMGR_AUTH_USERNAME"], self.env["BOTMGR_AUTH_PASSWORD"]

    @property
    def seed_file(self) -> Path:
        return Path(self.env.get("BOTMGR_TG_PUBLIC_KEY", self.root)).parent / "seed.json"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def child_pids(self) -> list[int]:
        return [int(p) for p in re.findall(r"started \(pid=(\d+)\)", self.output())]


def make_stack(*, sandbox: bool = True) -> Stack:
    root = Path(tempfile.mkdtemp(prefix="botmgr-e2e-"))
    http, api, tg, control = free_ports(4)
    tag = f"{os.getpid()}_{secrets.token_hex(4)}"
    env = {
        "HTTP_PORT": str(http),
        "API_PORT": str(api),
        "TGEMU_CONTROL_PORT": str(control),
        "VAR_DIR": str(root / "var"),
        "BOTMGR_DATABASE_URL": pg_url(PG_ADMIN_DSN, f"botmgr_e2e_{tag}"),
        "BOTMGR_REDIS_URL": REDIS_URL,
        "BOTMGR_REDIS_PREFIX": f"botmgr-e2e-{tag}:",
        "BOTMGR_AUTH_USERNAME": "e2e",
        "BOTMGR_AUTH_PASSWORD": secrets.token_urlsafe(18),
        "BOTMGR_SECRET_KEY": secrets.token_urlsafe(32),
        "BOTMGR_TG_SERVER": f"127.0.0.1:{tg}",
        "BOTMGR_TG_PUBLIC_KEY": str(root / "var" / "tgemu" / "public.pem"),
        "BOTMGR_WORKER_CONCURRENCY": "4",
    }
    if not sandbox:  # the real Telegram is never called: only the stack's start is checked
        env.update(BOTMGR_TG_API_ID="1", BOTMGR_TG_API_HASH="unused")
        del env["BOTMGR_TG_SERVER"], env["BOTMGR_TG_PUBLIC_KEY"]
    return Stack(root=root, env=env, sandbox=sandbox)


def start(stack: Stack) -> None:
    env_file = stack.root / "e2e.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in stack.env.items()))
    # Nothing of the caller's own BOTMGR_* settings may leak into the stack.
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTMGR_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    procfile, env_files = (
        ("Procfile.sandbox", f".env.sandbox,{env_file}")
        if stack.sandbox
        else ("Procfile", str(env_file))
    )
    with stack.log.open("wb") as out:
        stack.proc = subprocess.Popen(
            [sys.executable, "-m", "honcho", "-f", procfile, "-e", env_files, "start"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if stack.proc.poll() is not None:
            raise RuntimeError(f"the stack stopped while starting:\n{stack.output()[-4000:]}")
        try:
            ready = httpx.get(f"{stack.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            ready = False
        if ready and (stack.seed_file.exists() or not stack.sandbox):
            return
        time.sleep(0.3)
    raise RuntimeError(
        f"the stack was not ready in {START_TIMEOUT:.0f} s:\n{stack.output()[-4000:]}"
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes (its parent will reap it).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if text.encode() in cmdline and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def stop(stack: Stack) -> list[int]:
    """SIGTERM honcho (it stops every process group it started), then SIGKILL whatever is
    left of those groups. Returns the pids that were still alive afterwards (none)."""
    if stack.proc is None:
        return []
    children = stack.child_pids()
    if stack.proc.poll() is None:
        stack.proc.send_signal(signal.SIGTERM)
        try:
            stack.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(stack.proc.pid, signal.SIGKILL)
            stack.proc.wait(timeout=10)
    for pid in children:  # each was started in its own session: pid == its group id
        if alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    time.sleep(0.2)
    return [p for p in children if alive(p)] + processes_mentioning(str(stack.root))


def drop_data(stack: Stack) -> None:
    drop_database(stack.env["BOTMGR_DATABASE_URL"].rsplit("/", 1)[1])
    drop_redis_prefix(stack.env["BOTMGR_REDIS_PREFIX"])
