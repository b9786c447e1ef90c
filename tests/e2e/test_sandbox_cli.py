"""``botmgr sandbox`` around the edges: a port already taken is named before anything
starts; without nginx the API serves the sandbox's URL and says so in one line; the data
outlive a run, and ``--reset`` wipes them."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.sandbox import Sandbox, make_sandbox, remove
from tests.harness.env import ROOT

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    made = make_sandbox("--no-nginx")
    try:
        yield made
    finally:
        made.ctrl_c()
        made.kill()
        remove(made)


def stopped_cleanly(sandbox: Sandbox) -> None:
    assert sandbox.ctrl_c() is not None, sandbox.output()[-3000:]
    assert sandbox.leftovers() == ([], []), sandbox.output()[-3000:]


def test_a_busy_port_is_named_and_nothing_starts(sandbox: Sandbox) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", sandbox.ports["postgres"]))
        taken.listen()
        done = subprocess.run(sandbox.argv(), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert (
        f"port {sandbox.ports['postgres']} (the embedded PostgreSQL) is in use by another "
        "program" in done.stderr
    )
    assert "--postgres-port" in done.stderr
    assert not sandbox.data.exists()  # nothing was started or written


def test_without_nginx_data_kept_between_runs_and_reset(sandbox: Sandbox) -> None:
    sandbox.start()
    sandbox.wait_for("sandbox  | ready: ")
    out = sandbox.output()
    notes = [line for line in out.splitlines() if "the API serves" in line]
    assert len(notes) == 1 and f"the API serves {sandbox.url} itself" in notes[0], notes
    assert "nginx started" not in out
    assert httpx.get(f"{sandbox.url}/healthz").json()["status"] == "ok"
    assert "created a PostgreSQL cluster" in out and "database created" in out
    stopped_cleanly(sandbox)

    # The second run finds its cluster and database (and the emulator's world) again.
    sandbox.start()
    sandbox.wait_for("database exists")
    out = sandbox.output()
    assert "database exists" in out and "created a PostgreSQL cluster" not in out
    stopped_cleanly(sandbox)

    # --reset: a new cluster (no need to wait for the rest of the stack).
    sandbox.extra.append("--reset")
    sandbox.start()
    sandbox.wait_for("database created")
    assert f"--reset: wiped {sandbox.data}" in sandbox.output()
    stopped_cleanly(sandbox)
