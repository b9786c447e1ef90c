"""Lost rights, end to end (a real worker, Telethon, tgemu): an invalid binding whose
cause is rights comes back at the next hourly run of CHECK_NEW once they are restored;
a binding whose bot loses its rights fails over to another admin bot of the fleet and
its queued posts go out through it exactly once; with no standby it is invalid."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
from celery import Celery
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.models import Post, PostStatus
from botmgr.tasks.names import CHECK_ACTIVE, CHECK_NEW
from tests.harness.flows import bound_channel, delivered, post, register_bot, run_task, wait_task

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("worker", "clean_db")]


async def channel_answer(api: httpx.AsyncClient, channel: dict) -> dict:
    response = await api.get(f"/channels/{channel['id']}")
    assert response.status_code == 200, response.text
    return response.json()


async def test_restored_rights_revive_the_binding_within_one_hourly_run(
    tg_api: httpx.AsyncClient, tgemu: Any, celery: Celery
) -> None:
    bot = tgemu.create_bot()
    bot_id = await register_bot(tg_api, bot)
    channel = await bound_channel(tg_api, tgemu, celery, bot, bot_id, prefix="back")
    tgemu.revoke_admin(channel["id"], bot["id"])
    report = (await run_task(celery, CHECK_ACTIVE))["body"]
    assert report["invalidated"] == 1, report
    lost = (await channel_answer(tg_api, channel))["binding"]
    assert lost["status"] == "invalid" and lost["bot_id"] == bot_id
    assert lost["reason"].startswith("rights lost: the bot is not an admin")
    assert f"https://t.me/{bot['username']}?startchannel&admin=post_messages" in lost["reason"]

    tgemu.grant_admin(channel["id"], bot["id"])
    report = (await run_task(celery, CHECK_NEW))["body"]
    assert report["activated"] == 1, report
    back = (await channel_answer(tg_api, channel))["binding"]
    assert back["status"] == "active" and back["reason"] is None
    assert back["id"] == lost["id"]  # the same binding, its history kept
    assert [(h["from_bot_id"], h["to_bot_id"]) for h in back["history"]] == [
        (bot_id, None),
        (None, bot_id),
    ]
    sent = await post(tg_api, channel["id"], "after the rights came back", wait=True)
    assert sent["message_id"]


async def test_queued_posts_fail_over_to_the_other_admin_exactly_once(
    tg_api: httpx.AsyncClient, tgemu: Any, celery: Celery, db: AsyncSession
) -> None:
    bound_bot, standby = tgemu.create_bot(), tgemu.create_bot()
    bound_id = await register_bot(tg_api, bound_bot, alias="bound")
    standby_id = await register_bot(tg_api, standby, alias="standby")
    channel = await bound_channel(tg_api, tgemu, celery, bound_bot, bound_id, prefix="fo")
    tgemu.grant_admin(channel["id"], standby["id"])

    texts = [f"queued {i}" for i in range(6)]
    tasks = []
    for i, text in enumerate(texts):
        tasks.append((await post(tg_api, channel["id"], text))["task_id"])
        if i == 1:  # the rest are queued or on their way when the rights go
            tgemu.revoke_admin(channel["id"], bound_bot["id"])
    for task_id in tasks:
        task = await wait_task(tg_api, task_id, tries=300)
        assert task["task_status"] == "SUCCESS", task
    last = await post(tg_api, channel["id"], "after the move", wait=True)  # bound bot refused
    assert last["message_id"]

    rows = (await db.execute(select(Post.random_id, Post.status))).all()
    assert {status for _, status in rows} == {PostStatus.sent}
    counts = delivered(tgemu, [channel])
    assert counts == Counter({random_id: 1 for random_id, _ in rows})  # once by random_id
    in_channel = Counter(m["text"] for m in tgemu.messages(channel["id"]))
    assert in_channel == Counter([*texts, "after the move"])  # once by text

    moved = (await channel_answer(tg_api, channel))["binding"]
    assert moved["status"] == "active" and moved["bot_id"] == standby_id
    assert moved["bot_link"] == f"@{standby['username']}"
    [move] = moved["history"]
    assert (move["from_bot_id"], move["to_bot_id"]) == (bound_id, standby_id)
    assert move["why"].startswith("failover: rights lost") and move["at"]


async def test_without_a_standby_admin_the_binding_is_invalid(
    tg_api: httpx.AsyncClient, tgemu: Any, celery: Celery
) -> None:
    bot, idle = tgemu.create_bot(), tgemu.create_bot()
    bot_id = await register_bot(tg_api, bot, alias="bound")
    await register_bot(tg_api, idle, alias="not an admin there")
    channel = await bound_channel(tg_api, tgemu, celery, bot, bot_id, prefix="nofo")
    tgemu.revoke_admin(channel["id"], bot["id"])
    queued = await post(tg_api, channel["id"], "nobody can post this")
    task = await wait_task(tg_api, queued["task_id"], tries=300)
    assert task["task_status"] == "SUCCESS", task
    assert "bot cannot post in the channel" in task["task_result"]["message"]
    assert "startchannel&admin=post_messages" in task["task_result"]["message"]
    lost = (await channel_answer(tg_api, channel))["binding"]
    assert lost["status"] == "invalid" and lost["bot_id"] == bot_id
    assert "startchannel&admin=post_messages" in lost["reason"]
    assert [(h["from_bot_id"], h["to_bot_id"]) for h in lost["history"]] == [(bot_id, None)]
    assert tgemu.messages(channel["id"]) == []


async def test_a_post_of_unknown_outcome_is_reported_not_resent_by_the_standby(
    tg_api: httpx.AsyncClient, tgemu: Any, celery: Celery, db: AsyncSession
) -> None:
    bound_bot, standby = tgemu.create_bot(), tgemu.create_bot()
    bound_id = await register_bot(tg_api, bound_bot, alias="bound")
    standby_id = await register_bot(tg_api, standby, alias="standby")
    channel = await bound_channel(tg_api, tgemu, celery, bound_bot, bound_id, prefix="unk")
    tgemu.grant_admin(channel["id"], standby["id"])
    # The bound bot's send fails with a 500: whether it reached the channel is unknown.
    tgemu.add_fault("messages.sendMessage", "INTERNAL", bot_id=bound_bot["id"], code=500)
    tgemu.revoke_admin(channel["id"], bound_bot["id"])
    queued = await post(tg_api, channel["id"], "maybe sent")
    task = await wait_task(tg_api, queued["task_id"], tries=300)  # a retry after ~5 s
    assert task["task_status"] == "SUCCESS", task
    assert "unknown outcome" in task["task_result"]["message"], task
    [row] = (await db.execute(select(Post.status, Post.uncertain_bot_id))).all()
    assert tuple(row) == (PostStatus.failed, bound_id)
    assert tgemu.messages(channel["id"]) == []  # not re-sent through the standby
    moved = (await channel_answer(tg_api, channel))["binding"]
    assert moved["status"] == "active" and moved["bot_id"] == standby_id
