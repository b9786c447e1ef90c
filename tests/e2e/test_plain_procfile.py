"""The plain Procfile (the real Telegram, configuration from the environment) brings the
stack up behind nginx too; nothing here calls Telegram."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import running_stack
from tests.e2e.stack import Stack

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def plain_stack() -> Iterator[Stack]:
    with running_stack(sandbox=False) as running:
        yield running


def test_plain_stack_serves_through_nginx(plain_stack: Stack) -> None:
    assert httpx.get(f"{plain_stack.url}/healthz").json()["status"] == "ok"
    assert httpx.get(f"{plain_stack.url}/bots/").status_code == 401
    listed = httpx.get(f"{plain_stack.url}/bots/", auth=plain_stack.auth)
    assert listed.status_code == 200 and listed.json()["data"] == []
    names = set(re.findall(r"\| (\w+)\.\d+ started \(pid=", plain_stack.output()))
    assert names == {"api", "worker", "beat", "nginx"}
