"""The README's first command as a newcomer runs it: ``botmgr sandbox`` (embedded
PostgreSQL and Redis on free ports, none of the machine's servers), the curl examples
run as written against it (only its ports differ), the channel holding the post, and
Ctrl-C stopping everything: no process left, no port open."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.files import ROOT
from tests.e2e.sandbox import Sandbox, make_sandbox, remove

pytestmark = pytest.mark.timeout(300)
MARKED = re.compile(r"<!-- examples:start -->\s*```sh\n(.*?)```\s*<!-- examples:end -->", re.S)


def examples() -> tuple[Path, str]:
    for path in (ROOT / "README.md", ROOT / "docs" / "DEPLOY.md"):
        if path.exists() and (found := MARKED.search(path.read_text())):
            return path, found.group(1)
    raise AssertionError("no <!-- examples:start --> block in README.md or docs/DEPLOY.md")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    running = make_sandbox()
    try:
        running.start()
        running.wait_for("sandbox  | ready: ")
        yield running
    finally:
        running.ctrl_c()
        running.kill()  # nothing, unless a test failed before its Ctrl-C
        remove(running)


def test_the_sandbox_says_where_it_is_and_how_to_use_it(sandbox: Sandbox) -> None:
    out = sandbox.output()
    assert f"ready: {sandbox.url}" in out
    assert "credentials: demo / sandbox-password" in out
    assert f'eval "$(botmgr sandbox env --data {sandbox.data})"' in out
    # Its own servers, on the ports it was given: never the machine's 5432 / 6379.
    assert f'listening on IPv4 address "127.0.0.1", port {sandbox.ports["postgres"]}' in out
    assert f"port={sandbox.ports['redis']}" in out
    assert "created a PostgreSQL cluster in" in out


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl absent: the examples use it")
def test_curl_examples_work_as_written(sandbox: Sandbox) -> None:
    path, script = examples()
    script = script.replace("http://127.0.0.1:8080", sandbox.url).replace(
        "http://127.0.0.1:4431", sandbox.control
    )
    if not (ROOT / ".venv/bin/python").exists():
        script = script.replace(".venv/bin/python", sys.executable)
        script = script.replace(".venv/bin/botmgr", f"{sys.executable} -m botmgr.cli")
    # Any HTTP error fails the script; bodies still show in the output.
    prelude = 'set -eu\ncurl() { command curl --fail-with-body "$@"; echo; }\n'
    # `botmgr sandbox env` finds the seed of this sandbox's data directory through this.
    key = sandbox.data / "tgemu" / "public.pem"
    env = {**os.environ, "BOTMGR_TG_PUBLIC_KEY": str(key)}
    done = subprocess.run(
        ["bash", "-c", prelude + script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"{path}:\n{done.stdout}\n{done.stderr}"
    out = done.stdout
    assert '"new":true' in out
    assert "Канал добавлен" in out
    assert '"task_id"' in out  # the example without Prefer: wait is accepted as a task
    compact = out.replace(" ", "")
    assert '"post_messages":true' in compact
    # The bot was an admin before the bind, so the binding is active at once and the
    # Markdown post went out: a message id and a t.me link, and the channel holds it.
    assert '"status":"active"' in compact
    assert '"message_id":' in compact and '"link":"https://t.me/' in compact
    assert '"text":"Hellofromthesandbox"' in compact
    # The scheduled post: accepted at once with its post_id, then out when due with the
    # uploaded photo, its caption, the URL button and no notification sound.
    assert '"media":[1]' in compact and '"post_id":' in compact
    assert '"status":"sent"' in compact and '"scheduled":false' in compact
    assert '"kind":"photo"' in compact and '"text":"Scheduledwithaphoto"' in compact
    assert '"reply_markup":[[{"text":"Readmore","url":"https://example.org"}]]' in compact
    assert '"silent":true' in compact
    # What the channel got, asked of the emulator itself.
    seed = json.loads((sandbox.data / "tgemu" / "seed.json").read_text())
    channel = seed["public_channel"]["bot_api_id"]
    texts = [m["text"] for m in httpx.get(f"{sandbox.control}/channels/{channel}/messages").json()]
    assert "Hello from the sandbox" in texts and "Scheduled with a photo" in texts


def test_ctrl_c_leaves_no_process_and_no_open_port(sandbox: Sandbox) -> None:
    assert len(sandbox.child_pids()) >= 6  # postgres, redis, tgemu, api, worker, beat
    status = sandbox.ctrl_c()
    assert status is not None, f"still running after Ctrl-C:\n{sandbox.output()[-3000:]}"
    pids, ports = sandbox.leftovers()
    assert not pids, f"processes left running: {pids}"
    assert not ports, f"ports still open: {ports}"
    assert "database system is shut down" in sandbox.output()  # PostgreSQL stopped cleanly
