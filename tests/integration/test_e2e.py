"""End to end: HTTP → PostgreSQL → Celery worker process → Telethon → tgemu → /tasks."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from celery import Celery
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.models import Binding, Bot, Post
from botmgr.posts.markdown import render
from botmgr.tasks.names import CHECK_BINDING
from botmgr.worker.app import make_celery
from tests.harness import flows
from tests.harness.client import api_client
from tests.harness.env import make_env, settings_from
from tests.harness.flows import WAIT, bind_channel, register_bot, run_task, wait_task
from tests.harness.processes import WorkerProcess
from tests.harness.tgemu import stored_entities

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("worker", "clean_db")]
MARKDOWN = "**Hello** _world_, see [docs](https://example.com) and `code`\n\n> quoted"


async def bound_channel(
    api: httpx.AsyncClient, tgemu: Any, celery: Celery, db: AsyncSession
) -> tuple[dict, dict, int]:
    """A registered bot, admin of a public channel, with an active binding (bound while
    the bot was no admin yet, then checked)."""
    bot = tgemu.create_bot()
    await register_bot(api, bot)
    channel = await flows.bound_channel(
        api, tgemu, celery, bot, title="Public", prefix="pub", grant_first=False
    )
    return bot, channel, channel["binding_id"]


async def test_register_bind_grant_post(
    tg_api: httpx.AsyncClient, tgemu: Any, celery: Celery, db: AsyncSession
) -> None:
    bots = [tgemu.create_bot() for _ in range(2)]
    ids = [await register_bot(tg_api, b) for b in bots]
    channel = tgemu.create_channel("News", username=tgemu.unique("news"))

    # Bind by link, arbitrated: both bots are idle, the lower id wins.
    response = await tg_api.post(
        "/channels/", json={"channel": f"https://t.me/{channel['username']}"}
    )
    assert response.status_code == 202
    task_id = response.json()["task_id"]
    assert response.headers["location"] == f"/tasks/{task_id}"
    task = await wait_task(tg_api, task_id)
    assert task["task_id"] == task_id and task["task_status"] == "SUCCESS"
    chosen = bots[0]
    assert task["task_result"] == {
        "channel_id": channel["id"],
        "bot_link": "@" + chosen["username"],
        "deep_link": f"https://t.me/{chosen['username']}?startchannel&admin=post_messages",
        "message": "Канал добавлен, для дальнейшей работы необходимо дать боту права "
        "администратора в текущем канале",
        "binding_id": task["task_result"]["binding_id"],
        "status": "new",
    }
    binding_id = task["task_result"]["binding_id"]

    got = (await tg_api.get(f"/channels/{channel['bot_api_id']}")).json()
    assert got["tg_id"] == channel["id"] and got["title"] == "News"
    assert got["binding"]["status"] == "new" and got["binding"]["bot_id"] == ids[0]
    assert got["stats"] is None

    # Not an admin yet: the check keeps the binding new.
    assert (await run_task(celery, CHECK_BINDING, binding_id))["body"]["status"] == "new"

    tgemu.grant_admin(channel["id"], chosen["id"])
    assert (await run_task(celery, CHECK_BINDING, binding_id))["body"]["status"] == "active"

    response = await tg_api.post(
        "/messages",
        headers=WAIT,
        json={"channel_id": str(channel["bot_api_id"]), "message": MARKDOWN},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    message_id = body["message_id"]
    assert body["link"] == f"https://t.me/{channel['username']}/{message_id}"
    assert response.headers["location"].startswith("/tasks/")
    task = (await tg_api.get(response.headers["location"])).json()
    assert task["task_status"] == "SUCCESS" and task["task_result"] == body

    messages = tgemu.messages(channel["id"])
    assert [m["id"] for m in messages] == [message_id]
    rendered = render(MARKDOWN)
    assert messages[0]["text"] == rendered.text
    assert stored_entities(messages[0]) == rendered.entities
    assert {e.type for e in rendered.entities} >= {"bold", "italic", "text_link", "code"}

    # One login per bot: the API's registration; the worker reused the stored session.
    assert tgemu.metrics()["logins"].get(str(chosen["id"]), 0) == 1


async def test_unresolvable_channel_is_503_and_invalid(
    tg_api: httpx.AsyncClient, tgemu: Any, db: AsyncSession
) -> None:
    await register_bot(tg_api, tgemu.create_bot())
    user = tgemu.create_user(username=tgemu.unique("human"))
    for reference in ("@no_such_channel_here", "@" + user["username"]):
        response = await tg_api.post("/channels/", json={"channel": reference}, headers=WAIT)
        assert response.status_code == 503, response.text
        assert response.json()["message"] == "Задан некорректный идентификатор канала"
    rows = (await db.execute(select(Binding))).scalars().all()
    assert [r.status for r in rows] == ["invalid", "invalid"] and all(r.reason for r in rows)


async def test_private_channel_by_id_and_invite_link(
    tg_api: httpx.AsyncClient, tgemu: Any, celery: Celery
) -> None:
    bot = tgemu.create_bot()
    await register_bot(tg_api, bot)
    private = tgemu.create_channel("Private by id")
    response = await tg_api.post(
        "/channels/", headers=WAIT, json={"channel": f"https://t.me/c/{private['id']}/7"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["channel_id"] == private["id"]
    by_id = response.json()["binding_id"]

    invited = tgemu.create_channel("Private by invite")
    response = await tg_api.post(
        "/channels/", headers=WAIT, json={"channel": "https://t.me/+Zx9InviteHash01"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["channel_id"] is None
    assert response.json()["bot_link"] == "@" + bot["username"]
    by_invite = response.json()["binding_id"]

    tgemu.grant_admin(private["id"], bot["id"])
    tgemu.grant_admin(invited["id"], bot["id"])
    assert (await run_task(celery, CHECK_BINDING, by_id))["body"]["status"] == "active"
    assert (await run_task(celery, CHECK_BINDING, by_invite))["body"]["status"] == "active"
    got = (await tg_api.get(f"/channels/{invited['id']}")).json()
    assert got["title"] == "Private by invite" and got["binding"]["id"] == by_invite
    got = (await tg_api.get(f"/channels/{private['id']}")).json()
    assert got["title"] == "Private by id"

    response = await tg_api.post(
        "/messages", headers=WAIT, json={"channel_id": private["id"], "message": "hi"}
    )
    assert response.status_code == 200
    assert (
        response.json()["link"] == f"https://t.me/c/{private['id']}/{response.json()['message_id']}"
    )


async def test_lost_rights_and_unbind(
    tg_api: httpx.AsyncClient, tgemu: Any, celery: Celery, db: AsyncSession
) -> None:
    bot, channel, binding_id = await bound_channel(tg_api, tgemu, celery, db)
    tgemu.revoke_admin(channel["id"], bot["id"])
    response = await tg_api.post(
        "/messages", headers=WAIT, json={"channel_id": channel["id"], "message": "hi"}
    )
    assert response.status_code == 503, response.text
    got = (await tg_api.get(f"/channels/{channel['id']}")).json()
    assert got["binding"]["status"] == "invalid" and got["binding"]["reason"]
    post = (await db.execute(select(Post))).scalar_one()
    assert post.status == "failed" and post.error

    # Unbinding deactivates; binding again starts a fresh binding.
    response = await tg_api.delete(f"/channels/{channel['id']}")
    assert response.status_code == 200
    assert (await tg_api.get(f"/channels/{channel['id']}")).json()["binding"]["status"] in (
        "inactive",
        "invalid",
    )
    response = await tg_api.post(
        "/channels/", json={"channel": "@" + channel["username"]}, headers=WAIT
    )
    assert response.status_code == 200
    assert response.json()["binding_id"] != binding_id
    listed = (await tg_api.get("/channels/")).json()
    assert listed["total"] == 1 and listed["channels"][0]["binding"]["status"] == "new"


async def test_revoked_token_invalidates_bot_and_bindings(
    tg_api: httpx.AsyncClient, tgemu: Any, celery: Celery, db: AsyncSession
) -> None:
    bot, channel, binding_id = await bound_channel(tg_api, tgemu, celery, db)
    tgemu.revoke_token(bot["id"])
    response = await tg_api.post(
        "/messages", headers=WAIT, json={"channel_id": channel["id"], "message": "hi"}
    )
    assert response.status_code == 503, response.text
    row = (await db.execute(select(Bot).where(Bot.tg_id == bot["id"]))).scalar_one()
    assert row.status == "invalid" and row.status_reason
    binding = await db.get(Binding, binding_id)
    assert binding is not None and binding.status == "invalid"
    assert tgemu.messages(channel["id"]) == []


async def test_flood_wait_is_retried_not_slept(
    tg_api: httpx.AsyncClient, tgemu: Any, celery: Celery, db: AsyncSession
) -> None:
    bot, channel, _ = await bound_channel(tg_api, tgemu, celery, db)
    tgemu.add_fault("messages.sendMessage", "FLOOD_WAIT_2", bot_id=bot["id"])
    response = await tg_api.post(
        "/messages", json={"channel_id": channel["id"], "message": "after the wait"}
    )
    task_id = response.json()["task_id"]
    states: set[str] = set()
    task = await wait_task(tg_api, task_id, seen=states)
    assert "RETRY" in states and task["task_status"] == "SUCCESS", states
    assert len(tgemu.messages(channel["id"])) == 1


async def test_too_long_message_is_422(
    tg_api: httpx.AsyncClient, tgemu: Any, celery: Celery, db: AsyncSession
) -> None:
    _, channel, _ = await bound_channel(tg_api, tgemu, celery, db)
    for message in ("x" * 5000, "   "):
        response = await tg_api.post(
            "/messages", json={"channel_id": channel["id"], "message": message}
        )
        assert response.status_code == 422
        assert response.json()["message"]
    assert tgemu.messages(channel["id"]) == []


async def test_worker_killed_after_sending_posts_once(
    tgemu: Any, service_db: str, tmp_path: Any, db: AsyncSession
) -> None:
    """SIGKILL the worker after Telegram stored the message but before the answer came
    back; the re-delivered task must find RANDOM_ID_DUPLICATE and record the post."""
    env = make_env(service_db, tgemu)
    celery = make_celery(settings_from(env))
    first = WorkerProcess(env, tmp_path / "first.log", concurrency=2)
    first.wait_ready()
    try:
        async with api_client(settings_from(env)) as api:
            _, channel, _ = await bound_channel(api, tgemu, celery, db)
            tgemu.config(latency_ms=4000)
            try:
                response = await api.post(
                    "/messages", json={"channel_id": channel["id"], "message": "exactly once"}
                )
                task_id = response.json()["task_id"]
                for _ in range(100):
                    if tgemu.messages(channel["id"]):
                        break
                    await asyncio.sleep(0.05)
                assert len(tgemu.messages(channel["id"])) == 1
                first.kill()
            finally:
                tgemu.config(latency_ms=0)
            second = WorkerProcess(env, tmp_path / "second.log", concurrency=2)
            try:
                second.wait_ready()
                # Redelivery after the visibility timeout (10 s).
                task = await wait_task(api, task_id, tries=300)
                assert task["task_status"] == "SUCCESS", (task, second.log()[-2000:])
            finally:
                second.stop()
    finally:
        first.stop()
    assert len(tgemu.messages(channel["id"])) == 1
    post = (await db.execute(select(Post).where(Post.task_id == task_id))).scalar_one()
    assert post.status == "sent"
    assert tgemu.metrics()["errors"].get("messages.sendMessage RANDOM_ID_DUPLICATE", 0) >= 1


async def test_one_login_per_bot_per_worker_process(
    tg_api: httpx.AsyncClient, tgemu: Any, celery: Celery, db: AsyncSession
) -> None:
    """Without a stored session the worker logs the bot in once, stores the session and
    reuses its client for every later task, concurrent ones included."""
    bot = tgemu.create_bot()
    bot_id = await register_bot(tg_api, bot)
    row = await db.get_one(Bot, bot_id)
    row.session_encrypted = None  # as if the API had not kept one
    await db.commit()
    before = tgemu.metrics()["logins"].get(str(bot["id"]), 0)

    channel = tgemu.create_channel("Logins", username=tgemu.unique("logins"))
    tgemu.grant_admin(channel["id"], bot["id"])
    bound = await bind_channel(tg_api, channel)
    checked = await run_task(celery, CHECK_BINDING, bound["binding_id"])
    assert checked["body"]["status"] == "active"

    async def post(i: int) -> httpx.Response:
        return await tg_api.post(
            "/messages", headers=WAIT, json={"channel_id": channel["id"], "message": f"post {i}"}
        )

    responses = await asyncio.gather(*(post(i) for i in range(6)))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert len({r.json()["message_id"] for r in responses}) == 6
    assert tgemu.metrics()["logins"].get(str(bot["id"]), 0) - before == 1
    await db.refresh(row)
    assert row.session_encrypted is not None  # the worker stored the new session


def test_worker_log_holds_no_secrets(worker: WorkerProcess, tg_env: dict[str, str]) -> None:
    """Runs after the tests above: nothing they did leaked a token or key into the log."""
    import re

    log = worker.log()
    assert "ready." in log
    assert not re.search(r"\\d{5,}:[A-Za-z0-9_-]{30,}", log)  # bot tokens
    assert tg_env["BOTMGR_SECRET_KEY"] not in log
    assert tg_env["BOTMGR_AUTH_PASSWORD"] not in log


async def test_same_channel_by_id_then_by_name(tg_api: httpx.AsyncClient, tgemu: Any) -> None:
    """One channel written two ways is one channel: a live binding blocks the second;
    after unbinding, the name resolves onto the row the id created."""
    await register_bot(tg_api, tgemu.create_bot())
    channel = tgemu.create_channel("Twice", username=tgemu.unique("twice"))
    response = await tg_api.post(
        "/channels/", json={"channel": channel["bot_api_id"]}, headers=WAIT
    )
    assert response.status_code == 200, response.text
    by_id = response.json()["binding_id"]
    response = await tg_api.post(
        "/channels/", json={"channel": "@" + channel["username"]}, headers=WAIT
    )
    assert response.status_code == 409
    assert response.json() == {"message": "Канал уже привязан", "binding_id": by_id}

    assert (await tg_api.delete(f"/channels/{channel['id']}")).status_code == 200
    response = await tg_api.post(
        "/channels/", json={"channel": "@" + channel["username"]}, headers=WAIT
    )
    assert response.status_code == 200, response.text
    assert response.json()["channel_id"] == channel["id"]
    listed = (await tg_api.get("/channels/")).json()["channels"]
    assert [(c["tg_id"], c["username"]) for c in listed] == [(channel["id"], channel["username"])]
    assert listed[0]["binding"]["id"] == response.json()["binding_id"]


async def test_check_marks_lost_rights_invalid(
    tg_api: httpx.AsyncClient, tgemu: Any, celery: Celery, db: AsyncSession
) -> None:
    bot, channel, binding_id = await bound_channel(tg_api, tgemu, celery, db)
    tgemu.grant_admin(channel["id"], bot["id"], post_messages=False, edit_messages=True)
    checked = (await run_task(celery, CHECK_BINDING, binding_id))["body"]
    assert checked["status"] == "invalid"
    assert checked["reason"].startswith("rights lost: the bot has no right to post messages")
    assert "startchannel&admin=post_messages" in checked["reason"]  # no standby: the link
    response = await tg_api.post("/messages", json={"channel_id": channel["id"], "message": "x"})
    assert response.status_code == 409
    # Invalid for lack of rights: a check makes it active again once they are back.
    tgemu.grant_admin(channel["id"], bot["id"])
    back = (await run_task(celery, CHECK_BINDING, binding_id))["body"]
    assert (back["status"], back["reason"]) == ("active", None)


async def test_bind_flood_wait_is_retried(tg_api: httpx.AsyncClient, tgemu: Any) -> None:
    bot = tgemu.create_bot()
    await register_bot(tg_api, bot)
    channel = tgemu.create_channel("Flooded", username=tgemu.unique("flood"))
    tgemu.add_fault("contacts.resolveUsername", "FLOOD_WAIT_1", bot_id=bot["id"])
    response = await tg_api.post(
        "/channels/", json={"channel": "@" + channel["username"]}, headers=WAIT
    )
    assert response.status_code == 200, response.text
    assert response.json()["channel_id"] == channel["id"]
    assert tgemu.metrics()["errors"].get("contacts.resolveUsername FLOOD_WAIT_1", 0) >= 1
