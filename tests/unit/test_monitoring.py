"""The parts of botmgr/monitoring/ that need no service: metrics groups of separate
processes added up and swept once their processes are gone, the log filters, the
request-id middleware."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from botmgr.monitoring import logs, processes

# A process of a group: joins (or leads) one under ROOT, counts N sends, then waits for
# a line on stdin so the test decides when it is gone.
MEMBER = """
import os, sys
from pathlib import Path
from botmgr.monitoring import processes
group = processes.enter_group(Path(sys.argv[1]), "t")
from botmgr import metrics
for _ in range(int(sys.argv[2])):
    metrics.telegram_call("messages.sendMessage")
print(group, flush=True)
sys.stdin.readline()
"""


def member(root: Path, sends: int, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if k not in (processes.ENV, processes.GROUP_ENV)}
    return subprocess.Popen(
        [sys.executable, "-c", MEMBER, str(root), str(sends)],
        env={**clean, **(env or {})},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def sends(root: Path) -> float:
    from botmgr.monitoring.scrape import recorded

    return sum(
        s.value
        for family in recorded(root)
        for s in family.samples
        if s.name == "botmgr_telegram_calls_total"
    )


def test_groups_add_up_and_the_dead_ones_are_swept(tmp_path: Path) -> None:
    first, second = member(tmp_path, 3), member(tmp_path, 4)
    assert first.stdout is not None and second.stdout is not None
    group_a, group_b = Path(first.stdout.readline().strip()), Path(second.stdout.readline().strip())
    # A child of the first group (as uvicorn's and the worker's children are) writes there.
    child = member(tmp_path, 5, {processes.ENV: str(group_a), processes.GROUP_ENV: str(group_a)})
    assert child.stdout is not None and Path(child.stdout.readline().strip()) == group_a
    assert group_a != group_b and {group_a, group_b} == set(processes.groups(tmp_path))
    assert sends(tmp_path) == 12
    for proc in (child, second):
        proc.communicate("\n")
    assert sends(tmp_path) == 12  # exited processes' counts stay until a new start...
    third = member(tmp_path, 1)
    assert third.stdout is not None
    third.stdout.readline()
    assert sends(tmp_path) == 3 + 5 + 1  # ...which sweeps the group whose leader is gone
    assert group_b not in processes.groups(tmp_path) and group_a in processes.groups(tmp_path)
    for proc in (first, third):
        proc.communicate("\n")


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.ContextFilter())
    handler.addFilter(logs.RedactSecrets())
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("tests.monitoring")
    logger.addHandler(handler)
    logger.propagate, logger.level = False, logging.INFO
    yield logger, stream
    logger.removeHandler(handler)


def test_tokens_and_secrets_are_blanked(json_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_log
    token = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"
    logs.hide("operator-password-1234", "short")
    logger.info("login with %s failed for %s", token, "operator-password-1234")
    logger.info("a short word: short")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert token not in first["message"] and "operator-password-1234" not in first["message"]
    assert first["message"] == "login with <token> failed for ***"
    assert second["message"] == "a short word: short"  # too short to register


def test_context_ids_ride_on_records(json_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_log
    logs.enter_task("task-1", 7)
    logs.bind(channel_id=-1001234)
    logger.info("sending")
    logs.leave_task()
    logger.info("idle")
    sending, idle = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (sending["task_id"], sending["bot_id"], sending["channel_id"]) == ("task-1", 7, -1001234)
    assert not {"task_id", "bot_id", "channel_id", "request_id"} & set(idle)


async def test_request_id_is_taken_or_made_and_echoed() -> None:
    async def echo(request: Request) -> PlainTextResponse:
        return PlainTextResponse(logs.REQUEST_ID.get() or "")

    app = logs.RequestId(Starlette(routes=[Route("/", echo)]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        given = await client.get("/", headers={"X-Request-ID": "abc-123"})
        made = await client.get("/")
        hostile = await client.get("/", headers={"X-Request-ID": 'x" injected="1'})
    assert given.headers["x-request-id"] == given.text == "abc-123"
    assert len(made.headers["x-request-id"]) == 32 and made.text == made.headers["x-request-id"]
    assert hostile.headers["x-request-id"] != 'x" injected="1'
    assert logs.REQUEST_ID.get() is None  # reset after the request
