"""``botmgr sandbox``: the whole stack on this machine with nothing but Python — an
embedded PostgreSQL and Redis (the ``sandbox`` extra), tgemu seeded with the demo world,
migrations, the API, a worker, beat, and nginx in front when it is installed — under one
supervisor (honcho's) with prefixed, coloured output. Ctrl-C stops all of it.

The processes are Procfile.sandbox's, with .env.sandbox's settings, plus the two servers;
their data live in ``var/sandbox/`` (kept between runs; ``--reset`` wipes it). The shell's
own BOTMGR_* settings are left out, so a production URL there is never used. Not for
production: the credentials are published and the emulator stands in for Telegram.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path
from shlex import quote
from typing import Any

from botmgr.sandbox.embedded import (
    INSTALL_HINT,
    EmbeddedPostgres,
    EmbeddedRedis,
    MissingServer,
    port_in_use,
    postgres_bin,
    redis_server_bin,
)
from botmgr.sandbox.helpers import SANDBOX_DIR

DATABASE = "botmgr_sandbox"
READY_TIMEOUT = 180.0  # seconds before the supervisor says the stack is not ready yet
NAME = "sandbox"  # the supervisor's own lines


@dataclass(frozen=True)
class Ports:
    http: int = 8080  # the sandbox's URL (nginx, or the API itself without nginx)
    api: int = 8000  # the API behind nginx
    tg: int = 4430  # tgemu's MTProto (DC 2; its other DCs take free ports)
    control: int = 4431  # tgemu's control API (the README's examples use it)
    postgres: int = 55432  # not 5432 and 6379: the machine's own servers keep theirs
    redis: int = 56379


WHAT = {
    "http": "the sandbox's URL",
    "api": "the API behind nginx",
    "tg": "tgemu's MTProto",
    "control": "tgemu's control API",
    "postgres": "the embedded PostgreSQL",
    "redis": "the embedded Redis",
}


def project_root() -> Path:
    """The checkout holding Procfile.sandbox: the current directory, or the package's."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (base / "Procfile.sandbox").is_file() and (base / ".env.sandbox").is_file():
            return base
    raise SystemExit("botmgr sandbox: run it from the project (no Procfile.sandbox found)")


def nginx_binary() -> str | None:
    """Debian's nginx, on PATH or in /usr/sbin (root's PATH only may have it)."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None
    )


def _self_command() -> str:
    """How the operator runs this command: ``botmgr`` if that is on PATH, else the path
    they typed (``.venv/bin/botmgr``)."""
    script = Path(sys.argv[0])
    if script.name != "botmgr":
        return "botmgr"
    on_path = shutil.which("botmgr")
    if on_path and Path(on_path).resolve() == script.resolve():
        return "botmgr"
    try:
        return str(script.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(script.resolve())


@dataclass
class Sandbox:
    root: Path
    data: Path
    ports: Ports
    nginx: bool
    without_nginx: str = ""  # why nginx does not run (one line for the operator)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.http}"

    @property
    def seed_file(self) -> Path:
        return self.data / "tgemu" / "seed.json"

    def postgres(self) -> EmbeddedPostgres:
        return EmbeddedPostgres(self.data / "postgres", self.ports.postgres)

    def redis(self) -> EmbeddedRedis:
        return EmbeddedRedis(self.data / "redis", self.ports.redis)

    def used_ports(self) -> dict[str, int]:
        used = {f.name: getattr(self.ports, f.name) for f in fields(Ports)}
        if not self.nginx:
            del used["api"]  # the API serves the HTTP port itself
        return used

    def environment(self) -> dict[str, str]:
        from honcho.environ import parse

        env = {k: v for k, v in os.environ.items() if not k.startswith("BOTMGR_")}
        env.update(parse((self.root / ".env.sandbox").read_text()))
        bindir = str(Path(sys.executable).parent)  # python, botmgr: this environment's
        env.update(
            PATH=os.pathsep.join([bindir, env.get("PATH", os.defpath)]),
            PYTHONUNBUFFERED="1",  # lines reach the supervisor as they are written
            HTTP_PORT=str(self.ports.http),
            API_PORT=str(self.ports.api if self.nginx else self.ports.http),
            TGEMU_CONTROL_PORT=str(self.ports.control),
            VAR_DIR=str(self.data),
            BOTMGR_DATABASE_URL=self.postgres().url(DATABASE),
            BOTMGR_REDIS_URL=self.redis().url,
            BOTMGR_TG_SERVER=f"127.0.0.1:{self.ports.tg}",
            BOTMGR_TG_PUBLIC_KEY=str(self.data / "tgemu" / "public.pem"),
        )
        return env

    def processes(self) -> dict[str, str]:
        from honcho.environ import parse_procfile

        run = "exec python -m botmgr.sandbox"
        found = {
            "postgres": f"{run} postgres --data {quote(str(self.data / 'postgres'))} "
            f"--port {self.ports.postgres}",
            "redis": f"{run} redis --data {quote(str(self.data / 'redis'))} "
            f"--port {self.ports.redis}",
        }
        stack = parse_procfile((self.root / "Procfile.sandbox").read_text()).processes
        found.update((name, cmd) for name, cmd in stack.items() if self.nginx or name != "nginx")
        return found


def check_ports(sandbox: Sandbox) -> None:
    """SystemExit naming the first port that is taken (or given twice), before anything
    starts: a clash is reported, never half a stack."""
    seen: dict[int, str] = {}
    for name, port in sandbox.used_ports().items():
        if port in seen:
            raise SystemExit(
                f"botmgr sandbox: --{seen[port]}-port and --{name}-port are both {port}"
            )
        seen[port] = name
        if port_in_use(port):
            raise SystemExit(
                f"botmgr sandbox: port {port} ({WHAT[name]}) is in use by another program. "
                f"Stop it, or give the sandbox another port: --{name}-port N"
            )


def _check_installed() -> None:
    try:
        for path in (postgres_bin("postgres"), redis_server_bin()):
            if not path.exists():
                raise MissingServer(f"{path} is missing")
    except MissingServer as exc:
        raise SystemExit(f"botmgr sandbox: {exc}. Install the extra: {INSTALL_HINT}") from None
    try:
        import honcho  # noqa: F401
    except ImportError:
        raise SystemExit(f"botmgr sandbox: honcho is not installed ({INSTALL_HINT})") from None


class _Watcher:
    """Sees every line the supervisor prints (its printer) and, once the stack answers,
    prints where it is, the credentials and how to run the examples."""

    def __init__(self, sandbox: Sandbox, env: dict[str, str], events: Any) -> None:
        self.sandbox = sandbox
        self.env = env
        self.events = events
        self.worker_ready = threading.Event()

    def saw(self, name: str | None, text: str) -> None:
        if name == "worker" and " ready." in text:
            self.worker_ready.set()

    def say(self, text: str) -> None:
        from honcho.printer import Message

        now = datetime.datetime.now()
        self.events.put(Message(type="line", data=text + "\n", time=now, name=NAME, colour=None))

    def _ready(self) -> bool:
        import httpx

        if not (self.worker_ready.is_set() and self.sandbox.seed_file.exists()):
            return False
        # The API itself first (asking through nginx before it listens fills the output
        # with nginx's complaints), then the sandbox's URL.
        api = f"http://127.0.0.1:{self.env['API_PORT']}"
        try:
            return all(
                httpx.get(f"{base}/healthz", timeout=2).status_code == 200
                for base in (api, self.sandbox.url)
            )
        except httpx.HTTPError:
            return False

    def run(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._ready():
            if time.monotonic() > deadline:
                self.say(f"not ready after {READY_TIMEOUT:.0f} s: see the lines above")
                return
            time.sleep(0.5)
        user, password = self.env["BOTMGR_AUTH_USERNAME"], self.env["BOTMGR_AUTH_PASSWORD"]
        try:
            data = self.sandbox.data.relative_to(self.sandbox.root)
        except ValueError:
            data = self.sandbox.data
        self.say(f"ready: {self.sandbox.url}  (console {self.sandbox.url}/admin, docs /docs)")
        self.say(f"API and console credentials: {user} / {password}  (published: sandbox only)")
        elsewhere = (
            "" if self.sandbox.data == self.sandbox.root / SANDBOX_DIR else f" --data {data}"
        )
        command = f'eval "$({_self_command()} sandbox env{elsewhere})"'
        self.say(f"for the README's examples, in another shell: {command}")
        self.say(f"Ctrl-C stops everything; the data stay in {data}/ (--reset wipes them)")


def run(sandbox: Sandbox, reset: bool) -> int:
    """Start the stack and supervise it until Ctrl-C (or SIGTERM) or until a process
    exits; then stop every process. Returns the supervisor's exit status."""
    from honcho.manager import Manager
    from honcho.printer import Printer

    _check_installed()
    check_ports(sandbox)
    notes = []
    if reset and sandbox.data.exists():
        shutil.rmtree(sandbox.data)
        notes.append(f"--reset: wiped {sandbox.data}")
    if not sandbox.nginx:
        notes.append(f"{sandbox.without_nginx}: the API serves {sandbox.url} itself")
    (sandbox.data / "tgemu").mkdir(parents=True, exist_ok=True)
    env = sandbox.environment()

    class WatchingPrinter(Printer):  # type: ignore[misc]
        def write(self, message: Any) -> None:
            text = message.data
            if isinstance(text, bytes):
                text = text.decode(errors="replace")
            watcher.saw(message.name, text)
            super().write(message)

    manager = Manager(WatchingPrinter(sys.stdout))
    watcher = _Watcher(sandbox, env, manager.events)
    for note in notes:
        watcher.say(note)
    for name, cmd in sandbox.processes().items():
        manager.add_process(name, cmd, env=env, cwd=str(sandbox.root))
    threading.Thread(target=watcher.run, name="sandbox-ready", daemon=True).start()
    manager.loop()
    return int(manager.returncode or 0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Ports()
    for f in fields(Ports):
        parser.add_argument(
            f"--{f.name}-port",
            type=int,
            default=getattr(defaults, f.name),
            help=f"{WHAT[f.name]} (default {getattr(defaults, f.name)})",
        )
    parser.add_argument("--data", type=Path, help=f"data directory (default: {SANDBOX_DIR}/)")
    parser.add_argument("--reset", action="store_true", help="wipe the data directory first")
    parser.add_argument("--no-nginx", action="store_true", help="serve the API directly")


def from_arguments(args: argparse.Namespace) -> Sandbox:
    root = project_root()
    ports = Ports(**{f.name: getattr(args, f"{f.name}_port") for f in fields(Ports)})
    data = (args.data or root / SANDBOX_DIR).resolve()
    if args.no_nginx:
        why = "--no-nginx"
    elif nginx_binary() is None:
        why = "nginx is not installed (apt-get install nginx-light puts it in front)"
    elif shutil.which("envsubst") is None:
        why = "envsubst, which renders nginx.conf, is missing (apt-get install gettext-base)"
    else:
        why = ""
    return Sandbox(root=root, data=data, ports=ports, nginx=not why, without_nginx=why)
