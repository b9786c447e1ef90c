"""Bind → grant admin → post at once, with a real worker and tgemu: the post to a ``new``
binding checks the bot's rights when it is sent; POST /channels/{tg_id}/check asks now."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.models import Post
from tests.harness.flows import WAIT, bind_channel, register_bot, wait_task

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("worker", "clean_db")]


async def new_binding(api: httpx.AsyncClient, tgemu: Any) -> tuple[dict, dict, dict]:
    """A registered bot and a public channel bound before the bot is its admin."""
    bot = tgemu.create_bot()
    await register_bot(api, bot)
    channel = tgemu.create_channel("Fresh", username=tgemu.unique("fresh"))
    bound = await bind_channel(api, channel)
    assert bound["status"] == "new"
    return bot, channel, bound


def link(bot: dict) -> str:
    return f"https://t.me/{bot['username']}?startchannel&admin=post_messages"


async def test_grant_then_post_at_once(
    tg_api: httpx.AsyncClient, tgemu: Any, db: AsyncSession
) -> None:
    bot, channel, bound = await new_binding(tg_api, tgemu)
    got = (await tg_api.get(f"/channels/{channel['id']}")).json()["binding"]
    assert got["status"] == "new"
    checked_at = got["last_checked_at"]  # the bind task looked
    assert got["action"] == {
        "message": f"make @{bot['username']} an admin of the channel with the right to post "
        "messages",
        "deep_link": link(bot),
    }

    tgemu.grant_admin(channel["id"], bot["id"])
    response = await tg_api.post(
        "/messages", headers=WAIT, json={"channel_id": channel["id"], "message": "first"}
    )
    assert response.status_code == 200, response.text
    message_id = response.json()["message_id"]
    assert [(m["id"], m["text"]) for m in tgemu.messages(channel["id"])] == [(message_id, "first")]

    got = (await tg_api.get(f"/channels/{channel['id']}")).json()["binding"]
    assert got["id"] == bound["binding_id"] and got["status"] == "active"
    assert got["reason"] is None and got["last_checked_at"] > checked_at
    assert got["action"] is None


async def test_post_without_rights_fails_with_reason_and_deep_link(
    tg_api: httpx.AsyncClient, tgemu: Any, db: AsyncSession
) -> None:
    bot, channel, _ = await new_binding(tg_api, tgemu)
    # A too-long message is refused before anything else, whatever the binding.
    response = await tg_api.post(
        "/messages", json={"channel_id": channel["id"], "message": "x" * 5000}
    )
    assert response.status_code == 422, response.text

    response = await tg_api.post(
        "/messages", headers=WAIT, json={"channel_id": channel["id"], "message": "too early"}
    )
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["deep_link"] == link(bot)
    assert "not an admin" in body["reason"] and body["reason"] in body["message"]
    assert tgemu.messages(channel["id"]) == []
    post = (await db.execute(select(Post))).scalar_one()
    assert post.status == "failed" and "not an admin" in (post.error or "")
    got = (await tg_api.get(f"/channels/{channel['id']}")).json()["binding"]
    assert got["status"] == "new" and "not an admin" in got["reason"]
    assert got["last_checked_at"] is not None and got["action"]["deep_link"] == link(bot)

    # The same task's answer through GET /tasks/{id}.
    task = await wait_task(tg_api, response.headers["location"].rsplit("/", 1)[1])
    assert task["task_result"] == body


async def test_check_now_flips_new_to_active(tg_api: httpx.AsyncClient, tgemu: Any) -> None:
    bot, channel, bound = await new_binding(tg_api, tgemu)
    url = f"/channels/{channel['id']}/check"

    response = await tg_api.post(url)  # accepted, like POST /channels/
    assert response.status_code == 202, response.text
    task_id = response.json()["task_id"]
    assert response.headers["location"] == f"/tasks/{task_id}"
    task = await wait_task(tg_api, task_id)
    assert task["task_status"] == "SUCCESS"
    assert (
        task["task_result"]["status"] == "new" and "not an admin" in (task["task_result"]["reason"])
    )

    tgemu.grant_admin(channel["id"], bot["id"])
    response = await tg_api.post(f"/channels/{channel['bot_api_id']}/check", headers=WAIT)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "binding_id": bound["binding_id"],
        "status": "active",
        "reason": None,
    }
    assert response.headers["preference-applied"] == "wait=30"
    got = (await tg_api.get(f"/channels/{channel['id']}")).json()["binding"]
    assert got["status"] == "active" and got["action"] is None


async def test_check_refusals(tg_api: httpx.AsyncClient, tgemu: Any) -> None:
    response = await tg_api.post("/channels/987654321/check")
    assert response.status_code == 404, response.text
    response = await tg_api.post("/channels/not-a-channel/check")
    assert response.status_code == 404, response.text

    _, channel, _ = await new_binding(tg_api, tgemu)
    assert (await tg_api.delete(f"/channels/{channel['id']}")).status_code == 200
    response = await tg_api.post(f"/channels/{channel['id']}/check")
    assert response.status_code == 409, response.text
    assert "no live binding" in response.json()["message"]
