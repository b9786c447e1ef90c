"""Every SPEC.md §4 route, through nginx, against the sandbox stack: the demo bot is
registered, bound to the demo channels, made an admin in the emulator, and posts.

The tests of this module run in order and share what they created (``world``)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from celery import Celery

from botmgr.tasks.names import CHECK_BINDING
from botmgr.worker.app import make_celery
from tests.e2e.stack import Stack
from tests.harness.env import settings_from

pytestmark = pytest.mark.timeout(180)
WAIT = {"Prefer": "wait=25"}
BAD_CHANNEL = "Задан некорректный идентификатор канала"


@pytest.fixture(scope="module")
def api(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, auth=stack.auth, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def world(stack: Stack) -> dict[str, Any]:
    return {"seed": json.loads(stack.seed_file.read_text())}


@pytest.fixture(scope="module")
def celery(stack: Stack) -> Celery:
    return make_celery(settings_from(stack.env))


def grant_admin(stack: Stack, channel_id: int, bot_id: int) -> None:
    r = httpx.put(
        f"{stack.control}/channels/{channel_id}/admins/{bot_id}", json={"post_messages": True}
    )
    assert r.status_code == 200, r.text


def test_missing_or_wrong_credentials_are_401(stack: Stack) -> None:
    for auth in (None, ("e2e", "wrong-password"), ("someone", stack.auth[1])):
        r = httpx.get(f"{stack.url}/bots/", auth=auth)
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"].lower().startswith("basic")
        assert r.headers["content-type"].startswith("application/json")


def test_register_the_demo_bot(api: httpx.Client, world: dict[str, Any]) -> None:
    bot = world["seed"]["bot"]
    body = {
        "alias": "demo",
        "description": "Sandbox bot",
        "token": bot["token"],
        "name": bot["username"],
    }
    r = api.post("/bots/", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok" and r.json()["data"]["new"] is True
    world["bot_id"] = r.json()["data"]["id"]
    again = api.post("/bots/", json=body)
    assert again.json()["data"] == {"id": world["bot_id"], "new": False}


def test_a_token_telegram_refuses_is_503(api: httpx.Client, world: dict[str, Any]) -> None:
    r = api.post(
        "/bots/",
        json={
            "alias": "x",
            "description": "",
            "name": "nobody_bot",
            "token": "123456:AAnot-a-real-token-at-all-xxxxxxxxxxx",
        },
    )
    assert r.status_code == 503, r.text
    assert r.json()["status"] == "error" and r.json()["message"]


def test_get_patch_and_list_bots(api: httpx.Client, world: dict[str, Any]) -> None:
    token = world["seed"]["bot"]["token"]
    r = api.get(f"/bots/{world['bot_id']}")
    assert r.status_code == 200 and token not in r.text  # masked, never in clear
    patched = api.patch(f"/bots/{world['bot_id']}", json={"description": "Patched"})
    assert patched.status_code == 200, patched.text
    assert api.get(f"/bots/{world['bot_id']}").json()["data"]["description"] == "Patched"
    listed = api.get("/bots/")
    assert listed.status_code == 200
    assert [b["id"] for b in listed.json()["data"]] == [world["bot_id"]]
    assert token not in listed.text


def test_bind_the_public_channel_waiting(api: httpx.Client, world: dict[str, Any]) -> None:
    channel = world["seed"]["public_channel"]
    r = api.post(
        "/channels/", json={"channel": f"https://t.me/{channel['username']}"}, headers=WAIT
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["channel_id"] in (channel["id"], channel["bot_api_id"])
    assert body["bot_link"] == f"@{world['seed']['bot']['username']}"
    assert body["message"].startswith("Канал добавлен")
    world["public_binding"] = body["binding_id"]


def test_bind_the_private_channel_as_a_task(api: httpx.Client, world: dict[str, Any]) -> None:
    private = world["seed"]["private_channel"]
    r = api.post("/channels/", json={"channel": str(private["bot_api_id"])})
    assert r.status_code == 202, r.text
    location = r.headers["location"]
    assert location == f"/tasks/{r.json()['task_id']}"
    deadline = time.monotonic() + 30
    while True:
        task = api.get(location)
        assert task.status_code == 200, task.text
        if task.json()["task_status"] == "SUCCESS" or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert task.json()["task_status"] == "SUCCESS", task.text
    assert task.json()["task_id"] == r.json()["task_id"]
    assert task.json()["task_result"]["bot_link"].startswith("@")


def test_garbage_channel_is_503(api: httpx.Client) -> None:
    r = api.post(
        "/channels/", json={"channel": "https://t.me/no_such_channel_here_e2e"}, headers=WAIT
    )
    assert r.status_code == 503, r.text
    assert r.json()["message"] == BAD_CHANNEL


def test_admin_rights_activate_the_binding(
    stack: Stack, api: httpx.Client, celery: Celery, world: dict[str, Any]
) -> None:
    channel = world["seed"]["public_channel"]
    grant_admin(stack, channel["id"], world["seed"]["bot"]["id"])
    # The hourly check job, run now (beat would run it on schedule).
    result = celery.send_task(CHECK_BINDING, args=[world["public_binding"]])
    checked = result.get(timeout=60)
    assert checked["body"]["status"] == "active", checked
    r = api.get(f"/channels/{channel['bot_api_id']}")
    assert r.status_code == 200, r.text
    assert r.json()["binding"]["status"] == "active"


def test_post_markdown_through_nginx(
    stack: Stack, api: httpx.Client, world: dict[str, Any]
) -> None:
    channel = world["seed"]["public_channel"]
    r = api.post(
        "/messages",
        json={"channel_id": channel["bot_api_id"], "message": "**Hello** from the _e2e_ run"},
        headers=WAIT,
    )
    assert r.status_code == 200, r.text
    posted = httpx.get(f"{stack.control}/channels/{channel['id']}/messages").json()
    texts = [m["text"] for m in posted]
    assert "Hello from the e2e run" in texts, texts


def test_list_channels(api: httpx.Client, world: dict[str, Any]) -> None:
    r = api.get("/channels/")
    assert r.status_code == 200, r.text
    assert len(r.json()["channels"]) >= 2


def test_unbind_and_remove_the_bot(api: httpx.Client, world: dict[str, Any]) -> None:
    channel = world["seed"]["public_channel"]
    r = api.delete(f"/channels/{channel['bot_api_id']}")
    assert r.status_code == 200, r.text
    assert api.get(f"/channels/{channel['bot_api_id']}").json()["binding"]["status"] == "inactive"
    gone = api.delete(f"/bots/{world['bot_id']}")
    assert gone.status_code == 200, gone.text
    assert gone.json()["data"]["status"] == "deleted"


def test_unknown_ids_are_404_and_bad_bodies_422(api: httpx.Client) -> None:
    for path in ("/bots/999999", "/channels/-1009999999999", "/tasks/no-such-task"):
        r = api.get(path)
        assert r.status_code == 404, (path, r.text)
        assert r.headers["content-type"].startswith("application/json")
    bad = api.post("/messages", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 422, bad.text


def test_console_forms_through_nginx(stack: Stack) -> None:
    """The console's CSRF check compares Origin with the Host and scheme nginx forwards:
    its own forms pass, another origin's are refused; the security headers pass through."""
    own = {"Origin": stack.url, "Sec-Fetch-Site": "same-origin"}
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        user, password = stack.auth
        form = {"username": user, "password": password}
        assert client.post("/admin/login", data=form, headers=own).status_code == 302
        page = client.get("/admin/")
        assert page.status_code == 200
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"
        token = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
        assert token
        evil = {"Origin": "https://evil.example"}
        refused = client.post("/admin/logout", data={"csrf_token": token[1]}, headers=evil)
        assert refused.status_code == 403
        assert client.get("/admin/").status_code == 200  # still logged in
        done = client.post("/admin/logout", data={"csrf_token": token[1]}, headers=own)
        assert done.status_code == 302
        assert client.get("/admin/").status_code == 302


def test_rate_limit_answers_429(stack: Stack) -> None:
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=stack.url, auth=stack.auth, timeout=30) as c:
            return await asyncio.gather(*(c.get("/bots/") for _ in range(150)))

    answers = asyncio.run(burst())
    codes = {r.status_code for r in answers}
    assert 429 in codes, codes
    limited = next(r for r in answers if r.status_code == 429)
    assert limited.json()["status"] == "error"
    time.sleep(2.5)  # let the bucket refill for whatever runs next


def test_access_log_has_requests_but_no_credentials(stack: Stack) -> None:
    output = stack.output()
    access = [
        json.loads(line.split("| ", 1)[1])
        for line in output.splitlines()
        if "| {" in line and '"request_id"' in line
    ]
    assert any(e["uri"] == "/bots/" and e["status"] == 200 for e in access)
    user, password = stack.auth
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    assert password not in output and encoded not in output
