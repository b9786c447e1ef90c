"""``BOTMGR_LOG_FORMAT=json`` on a real ``botmgr api`` and ``botmgr worker``: JSON lines
carrying the request's id (the client's ``X-Request-ID``, echoed back) and the task's id
and bot, and no secret anywhere in either log."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from botmgr.worker.app import make_celery
from tests.harness.env import settings_from
from tests.harness.flows import WAIT, bound_channel, register_bot, wait_task
from tests.harness.processes import ApiProcess, WorkerProcess, running
from tests.harness.stack import ServiceStack, service_stack

pytestmark = pytest.mark.timeout(120)
REQUEST_ID = "req-metrics-test-42"


def json_lines(text: str) -> list[dict]:
    """The log's JSON records (Celery's start-up banner is printed, not logged)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def run(stack: ServiceStack, api: ApiProcess) -> tuple[dict, httpx.Response, str]:
    assert stack.emu is not None
    celery = make_celery(settings_from(stack.env), polling=True)
    async with httpx.AsyncClient(base_url=api.url, auth=api.auth, timeout=60) as client:
        bot = stack.emu.create_bot()
        bot_id = await register_bot(client, bot)
        channel = await bound_channel(client, stack.emu, celery, bot, bot_id)
        stack.emu.add_fault("messages.sendMessage", "FLOOD_WAIT_1")  # a retry, logged
        answer = await client.post(
            "/messages",
            json={"channel_id": channel["id"], "message": "hello"},
            headers={"X-Request-ID": REQUEST_ID},
        )
        assert answer.status_code == 202, answer.text
        task = await wait_task(client, answer.json()["task_id"], tries=200)
        assert task["task_status"] == "SUCCESS", task
        wrong = await client.get("/bots/", auth=("operator", "not-the-password"), headers=WAIT)
        assert wrong.status_code == 401
    return {"bot": bot, "bot_id": bot_id}, answer, answer.json()["task_id"]


def test_json_lines_carry_ids_and_no_secret(tmp_path: Path) -> None:
    with service_stack(
        tmp_path, api=False, BOTMGR_LOG_FORMAT="json", BOTMGR_RETRY_UNREACHABLE_SECONDS="1"
    ) as stack:
        worker = WorkerProcess(stack.env, tmp_path / "worker.log", concurrency=4)
        api = ApiProcess(stack.env, tmp_path / "api.log", loglevel="INFO")
        with running(worker), running(api):
            made, answer, task_id = asyncio.run(run(stack, api))
        api_log, worker_log = api.log(), worker.log()
    assert answer.headers["x-request-id"] == REQUEST_ID  # echoed
    api_records = json_lines(api_log)
    # Every line of the API's log is JSON, uvicorn's own included.
    assert len(api_records) == len([line for line in api_log.splitlines() if line.strip()])
    posted = [r for r in api_records if r.get("request_id") == REQUEST_ID]
    assert posted and any("POST /messages" in r["message"] for r in posted), posted
    assert {"time", "level", "logger", "message"} <= set(posted[0])
    retried = [r for r in json_lines(worker_log) if r.get("task_id") == task_id]
    assert any("retries in" in r["message"] for r in retried), retried
    assert all(r.get("bot_id") == made["bot_id"] for r in retried), retried
    env = stack.env
    for secret in (
        made["bot"]["token"],
        env["BOTMGR_AUTH_PASSWORD"],
        env["BOTMGR_SECRET_KEY"],
    ):
        assert secret not in api_log and secret not in worker_log
