"""The curl examples of docs/DEPLOY.md (the README's, if it carries the same markers) run
as written against a fresh sandbox stack; only its ports and credentials differ."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.files import ROOT
from tests.e2e.stack import Stack

pytestmark = pytest.mark.timeout(240)
MARKED = re.compile(r"<!-- examples:start -->\s*```sh\n(.*?)```\s*<!-- examples:end -->", re.S)


def examples() -> tuple[Path, str]:
    for path in (ROOT / "README.md", ROOT / "docs" / "DEPLOY.md"):
        if path.exists() and (found := MARKED.search(path.read_text())):
            return path, found.group(1)
    raise AssertionError("no <!-- examples:start --> block in README.md or docs/DEPLOY.md")


def test_curl_examples_work_as_written(fresh_stack: Stack) -> None:
    path, script = examples()
    user, password = fresh_stack.auth
    script = (
        script.replace("http://127.0.0.1:8080", fresh_stack.url)
        .replace("http://127.0.0.1:4431", fresh_stack.control)
        .replace("demo:sandbox-password", f"{user}:{password}")
    )
    if not (ROOT / ".venv/bin/python").exists():
        script = script.replace(".venv/bin/python", sys.executable)
    # Any HTTP error fails the script; bodies still show in the output.
    prelude = 'set -eu\ncurl() { command curl --fail-with-body "$@"; echo; }\n'
    env = {**os.environ, "BOTMGR_TG_PUBLIC_KEY": fresh_stack.env["BOTMGR_TG_PUBLIC_KEY"]}
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
