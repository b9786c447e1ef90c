"""Each view lists real rows and its filters and search narrow them; bots are created and
re-tokened through the bots service, so tgemu checks the token."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.models import BindingEvent, Bot, BotStatus
from tests.admin.conftest import seed

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("clean_db")]


async def page(console: httpx.AsyncClient, url: str) -> str:
    response = await console.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.text


async def test_bots_list_masks_tokens(
    console: httpx.AsyncClient, console_app: FastAPI, db: AsyncSession
) -> None:
    rows = await seed(db, console_app.state.settings)
    head, tail = rows["token"].split(":")
    listing = await page(console, "/admin/bot/list")
    for text in (
        rows["bot"].username,
        rows["other"].username,
        "token rejected: seed",
        "active 1",
        "invalid 1",
        f"{head}:****…{tail[-4:]}",
    ):
        assert text in listing
    details = await page(console, f"/admin/bot/details/{rows['bot'].id}")
    edit = await page(console, f"/admin/bot/edit/{rows['bot'].id}")
    for text in (listing, details, edit):
        assert tail not in text and rows["bot"].token_encrypted not in text
    filtered = await page(console, "/admin/bot/list?status=invalid")
    assert rows["other"].username in filtered and rows["bot"].username not in filtered
    assert (await console.get("/admin/bot/export/csv")).status_code in (403, 404)


async def test_bindings_filter_by_status_and_bot_search_by_channel(
    console: httpx.AsyncClient, console_app: FastAPI, db: AsyncSession
) -> None:
    rows = await seed(db, console_app.state.settings)
    news, sport = rows["news"].title, rows["sport"].title
    listing = await page(console, "/admin/binding/list")
    assert news in listing and sport in listing
    assert "bot is not an admin of the channel" in listing
    assert f"@{rows['bot'].username}" in listing

    by_status = await page(console, "/admin/binding/list?status=invalid")
    assert sport in by_status and news not in by_status
    by_bot = await page(console, f"/admin/binding/list?bot_id={rows['bot'].id}")
    assert news in by_bot and sport not in by_bot
    by_channel = await page(console, f"/admin/binding/list?search={sport.split()[1]}")
    assert sport in by_channel and news not in by_channel
    by_username = await page(console, f"/admin/binding/list?search={rows['news'].username}")
    assert news in by_username and sport not in by_username


async def test_channels_posts_and_stats(
    console: httpx.AsyncClient, console_app: FastAPI, db: AsyncSession
) -> None:
    rows = await seed(db, console_app.state.settings, days=12)
    news = rows["news"]
    channels = await page(console, "/admin/channel/list")
    assert f"active · @{rows['bot'].username}" in channels
    assert f"invalid · @{rows['other'].username}" in channels
    search = await page(console, f"/admin/channel/list?search={rows['sport'].username}")
    assert rows["sport"].title in search and news.title not in search

    posts = await page(console, "/admin/post/list")
    assert f"https://t.me/{news.username}/42" in posts
    assert "Telegram refused the message: seed" in posts
    failed = await page(console, "/admin/post/list?status=failed")
    assert "Telegram refused the message: seed" in failed
    assert f"https://t.me/{news.username}/42" not in failed
    assert news.title in await page(console, f"/admin/post/list?channel_id={news.id}")

    row = f'/channel/overview/{news.id}">{news.title}</a>'  # a stats row's channel cell
    stats = await page(console, f"/admin/channel-stats/list?channel_id={news.id}&pageSize=50")
    assert stats.count(row) == 12
    assert row not in await page(
        console, f"/admin/channel-stats/list?channel_id={rows['sport'].id}"
    )
    day = rows["last_day"].isoformat()
    one_day = await page(
        console, f"/admin/channel-stats/list?day_op=equals&day={day}&channel_id={news.id}"
    )
    assert one_day.count(row) == 1
    recent = await page(console, f"/admin/channel-stats/list?day_op=greater_than&day={day}")
    assert row not in recent

    overview = await page(console, f"/admin/channel/overview/{news.id}")
    # posts, views and subscribers (no post samples: no views by age, no ERR)
    assert overview.count("<svg") == 3 and overview.count("<rect") == 12
    assert overview.count("<circle") == 2 * 12 and "Posts per day" in overview
    assert "<script" not in overview.split("</svg>")[0].split("<svg")[1]


async def test_create_and_retoken_bot_check_the_token_with_telegram(
    console: httpx.AsyncClient, console_app: FastAPI, tgemu: Any, db: AsyncSession
) -> None:
    bot = tgemu.create_bot(first_name="Console")
    form = {"token": bot["token"], "name": "", "alias": "from console", "description": "d"}
    created = await console.post("/admin/bot/create", data=form)
    assert created.status_code == 302, created.text
    row = (await db.execute(select(Bot).where(Bot.tg_id == bot["id"]))).scalar_one()
    assert row.username == bot["username"] and row.alias == "from console"
    assert row.status == BotStatus.active and row.session_encrypted

    # A token Telegram rejects is refused with the service's message, and not stored.
    stranger = tgemu.create_bot()
    tgemu.revoke_token(stranger["id"])
    refused = await console.post("/admin/bot/create", data={**form, "token": stranger["token"]})
    assert refused.status_code == 400 and "Telegram rejected the bot token" in refused.text
    assert stranger["token"] not in refused.text
    assert (await db.execute(select(Bot).where(Bot.tg_id == stranger["id"]))).first() is None
    malformed = await console.post("/admin/bot/create", data={**form, "token": "12:short"})
    assert malformed.status_code == 400

    # Re-token: a new token of the same bot passes; another bot's token does not.
    new_token = tgemu.revoke_token(bot["id"])
    bot_id = row.id
    edit = f"/admin/bot/edit/{bot_id}"
    other = tgemu.create_bot()
    wrong = await console.post(edit, data={**form, "token": other["token"]})
    assert wrong.status_code == 400 and "belongs to another Telegram bot" in wrong.text
    kept = await console.post(edit, data={**form, "token": "", "alias": "renamed"})
    assert kept.status_code == 302, kept.text
    retoken = await console.post(edit, data={**form, "token": new_token})
    assert retoken.status_code == 302, retoken.text
    db.expire_all()
    row = (await db.execute(select(Bot).where(Bot.id == bot_id))).scalar_one()
    assert row.alias == "from console" and row.status == BotStatus.active
    assert console_app.state.cipher.decrypt(row.token_encrypted) == new_token


async def test_channel_overview_shows_the_binding_history(
    console: httpx.AsyncClient, console_app: FastAPI, db: AsyncSession
) -> None:
    rows = await seed(db, console_app.state.settings)
    news, empty = rows["news"], await page(console, f"/admin/channel/overview/{rows['news'].id}")
    assert 'id="binding-history"' in empty and "No moves, losses or recoveries." in empty
    db.add(
        BindingEvent(
            binding_id=rows["active"].id,
            from_bot_id=rows["other"].id,
            to_bot_id=rows["bot"].id,
            why="failover: rights lost: CHAT_ADMIN_REQUIRED",
        )
    )
    await db.commit()
    overview = await page(console, f"/admin/channel/overview/{news.id}")
    history = overview.split('id="binding-history"')[1].split("</table>")[0]
    assert f"@{rows['other'].username}" in history and f"@{rows['bot'].username}" in history
    assert "failover: rights lost: CHAT_ADMIN_REQUIRED" in history
