"""Console actions against a real worker and tgemu: each enqueues the task the API uses,
the Tasks page shows its id and result, and the effect shows in the views."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.models import Binding, BindingStatus, Bot, BotStatus, Channel, Post, PostStatus
from botmgr.worker import schedules
from tests.admin.conftest import wait_done
from tests.harness.flows import bind_channel

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("worker", "clean_db")]
FIRST_TASK = re.compile(r'data-task-id="([0-9a-f-]{36})"')


async def act(console: httpx.AsyncClient, url: str, **form: str) -> str:
    """Run an action (a POST, with the session's CSRF token); the Tasks page it leads to,
    newest first."""
    response = await console.post(url, data=form)
    assert response.status_code in (302, 303), (url, response.status_code, response.text)
    assert "/admin/tasks" in response.headers["location"], response.headers["location"]
    page = await console.get(response.headers["location"])
    assert page.status_code == 200
    return page.text


def newest_task(page: str) -> str:
    match = FIRST_TASK.search(page)
    assert match, page
    return match.group(1)


async def bound(
    tg_api: httpx.AsyncClient, tgemu: Any, console: httpx.AsyncClient, db: AsyncSession
) -> tuple[dict, dict, Binding]:
    """A bot registered through the console and a channel bound (``new``) through the API."""
    bot = tgemu.create_bot()
    created = await console.post("/admin/bot/create", data={"token": bot["token"], "alias": "a"})
    assert created.status_code == 302, created.text
    channel = tgemu.create_channel("Console news", username=tgemu.unique("cnews"))
    bound = await bind_channel(tg_api, channel)
    binding = await db.get_one(Binding, bound["binding_id"])
    assert binding.status == BindingStatus.new
    return bot, channel, binding


async def test_binding_check_post_collect_unbind(
    console: httpx.AsyncClient, tg_api: httpx.AsyncClient, tgemu: Any, db: AsyncSession
) -> None:
    bot, channel, binding = await bound(tg_api, tgemu, console, db)
    tgemu.grant_admin(channel["id"], bot["id"])

    page = await act(console, f"/admin/binding/action/check-rights?pks={binding.id}")
    task_id = newest_task(page)
    assert f"check rights of binding {binding.id}" in page and "botmgr.channels.check" in page
    row = await wait_done(console, task_id)
    assert "SUCCESS" in row and "active" in row
    await db.refresh(binding)
    assert binding.status == BindingStatus.active and binding.last_checked_at is not None
    listing = (await console.get("/admin/binding/list?status=active")).text
    assert "Console news" in listing

    # Post from the channel page.
    overview = (await console.get(f"/admin/channel/overview/{binding.channel_id}")).text
    assert "Post a message" in overview and "disabled" not in overview.split("post-submit")[1][:80]
    page = await act(
        console, f"/admin/channel/post/{binding.channel_id}", message="**Hello** from the console"
    )
    row = await wait_done(console, newest_task(page))
    assert "SUCCESS" in row and f"https://t.me/{channel['username']}/" in row
    assert any(m["text"] == "Hello from the console" for m in tgemu.messages(channel["id"]))
    post = (
        await db.execute(select(Post).where(Post.channel_id == binding.channel_id))
    ).scalar_one()
    assert post.status == PostStatus.sent
    assert (
        f"https://t.me/{channel['username']}/{post.message_id}"
        in (await console.get("/admin/post/list")).text
    )

    # Collect statistics now: the collection task runs for this channel.
    page = await act(console, f"/admin/channel/action/collect-stats?pks={binding.channel_id}")
    assert "botmgr.stats.collect_channel" in page
    row = await wait_done(console, newest_task(page))
    assert "SUCCESS" in row, row
    stored = await db.get_one(Channel, binding.channel_id)
    await db.refresh(stored)
    assert stored.feed_pts is not None  # the collection now follows the channel

    # Unbind: done by the channels service at once.
    page = await act(console, f"/admin/channel/action/unbind?pks={binding.channel_id}")
    assert "binding is now inactive" in page
    await db.refresh(binding)
    assert binding.status == BindingStatus.inactive and binding.reason == "unbound by operator"


async def test_refusals_are_shown(
    console: httpx.AsyncClient,
    console_app: FastAPI,
    tg_api: httpx.AsyncClient,
    tgemu: Any,
    db: AsyncSession,
) -> None:
    _, _, binding = await bound(tg_api, tgemu, console, db)
    # The form's Markdown is bounded as the API's: refused before anything is recorded.
    deep = "- " * 17 + "x"
    page = await act(console, f"/admin/channel/post/{binding.channel_id}", message=deep)
    assert "refused" in page and "nesting limit of 16 levels" in page
    # Posting needs a binding in service (new or active): an unbound channel is refused,
    # nothing is enqueued.
    page = await act(console, f"/admin/channel/action/unbind?pks={binding.channel_id}")
    page = await act(console, f"/admin/channel/post/{binding.channel_id}", message="hi")
    assert "refused" in page and "no active binding" in page
    assert (await db.execute(select(Post))).first() is None
    # "Check rights now" is POST /channels/{tg_id}/check's service call: no live binding.
    page = await act(console, f"/admin/binding/action/check-rights?pks={binding.id}")
    assert "refused" in page and "no live binding" in page


async def test_check_token_now(console: httpx.AsyncClient, tgemu: Any, db: AsyncSession) -> None:
    bot = tgemu.create_bot()
    created = await console.post("/admin/bot/create", data={"token": bot["token"], "alias": "t"})
    assert created.status_code == 302
    row = (await db.execute(select(Bot).where(Bot.tg_id == bot["id"]))).scalar_one()

    page = await act(console, f"/admin/bot/action/check-token?pks={row.id}")
    assert "SUCCESS" in await wait_done(console, newest_task(page))
    await db.refresh(row)
    assert row.status == BotStatus.active

    tgemu.revoke_token(bot["id"])
    page = await act(console, f"/admin/bot/action/check-token?pks={row.id}")
    assert "SUCCESS" in await wait_done(console, newest_task(page))
    await db.refresh(row)
    assert row.status == BotStatus.invalid and row.status_reason
    listing = (await console.get("/admin/bot/list?status=invalid")).text
    assert bot["username"] in listing


async def test_schedules_page(console: httpx.AsyncClient, console_app: FastAPI) -> None:
    celery = console_app.state.celery
    schedules.ensure_defaults(celery, console_app.state.settings)  # what beat does at start
    page = (await console.get("/admin/schedules")).text
    for name in schedules.DEFAULT_NAMES:
        assert f'data-name="{name}"' in page
    assert "cron 0 * * * *" in page and "never" in page

    change = "/admin/schedules/change"
    response = await console.post(
        change, data={"name": "check-new-bindings", "op": "spec", "spec": "every 600"}
    )
    assert response.status_code == 303
    entry = {s.name: s for s in schedules.list_schedules(celery)}["check-new-bindings"]
    assert entry.spec == "every 600"
    assert "every 600" in (await console.get("/admin/schedules")).text

    page = await act(console, change, name="check-new-bindings", op="spec", spec="whenever")
    assert "refused" in page and "whenever" in page
    response = await console.post(change, data={"name": "collect-daily-stats", "op": "disable"})
    assert response.status_code == 303
    page = (await console.get("/admin/schedules")).text
    assert "paused" in page and "Enable" in page
    assert not {s.name: s for s in schedules.list_schedules(celery)}["collect-daily-stats"].enabled
    await console.post(change, data={"name": "collect-daily-stats", "op": "enable"})
    assert {s.name: s for s in schedules.list_schedules(celery)}["collect-daily-stats"].enabled

    page = await act(console, change, name="check-new-bindings", op="run")
    assert "SUCCESS" in await wait_done(console, newest_task(page))
