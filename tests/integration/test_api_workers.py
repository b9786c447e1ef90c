"""``botmgr api --workers N``: N uvicorn processes on one port, each with its part of the
API's database connections and render processes, all stopped by one SIGTERM.

What a process holds is read from /proc (Linux): its children, and its TCP sockets to
PostgreSQL. The pool connects lazily, so a process with such a socket served requests."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from botmgr.db import api_pool
from tests.harness.env import PG_ADMIN_DSN, ROOT, USER
from tests.harness.processes import botmgr_argv, free_port, wait_http

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc"),
]
PG_PORT = make_url(PG_ADMIN_DSN).port or 5432  # the tests' server (maybe an embedded one)


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def pg_sockets(pid: int) -> int:
    """TCP connections of ``pid`` to PostgreSQL's port."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == PG_PORT and fields[9] in inodes:
                count += 1
    return count


async def load(url: str, auth: tuple[str, str]) -> None:
    # Many short-lived connections, in waves: each is accepted by whichever process
    # takes it first, so both get some.
    for _ in range(8):
        async with httpx.AsyncClient(auth=auth, timeout=20) as client:
            answers = await asyncio.gather(
                *(client.get(f"{url}/bots/", headers={"Connection": "close"}) for _ in range(16))
            )
        assert {a.status_code for a in answers} == {200}
        await asyncio.sleep(0.05)


def test_workers_share_one_port_the_pool_and_the_renderers(service_env: dict[str, str]) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        **service_env,
        "BOTMGR_API_WORKERS": "1",  # the flag wins over the setting
        "BOTMGR_POST_RENDER_PROCESSES": "2",
    }
    process = subprocess.Popen(
        botmgr_argv("--loglevel", "WARNING", "api", "--port", str(port), "--workers", "2"),
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    servers: list[int] = []
    renderers: list[int] = []
    try:
        wait_http(f"{url}/healthz", (200,), process)
        servers = [c for c in children(process.pid) if "spawn_main" in cmdline(c)]
        assert len(servers) == 2, [cmdline(c) for c in children(process.pid)]
        asyncio.run(load(url, (USER, service_env["BOTMGR_AUTH_PASSWORD"])))
        assert api_pool(2) == 15  # half of one process's 30
        for server in servers:
            ours = [c for c in children(server) if "botmgr.posts.render_child" in cmdline(c)]
            assert len(ours) == 1, "2 render processes split over 2 API processes"
            renderers += ours
            assert 1 <= pg_sockets(server) <= api_pool(2), "each served, in its share"
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    deadline = time.monotonic() + 10
    while any(alive(p) for p in servers + renderers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in servers + renderers if alive(p)], "SIGTERM stops every process"
