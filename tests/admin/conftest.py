"""Console fixtures: the API app (with the console mounted) over ASGITransport, logged in
through the console's own login form, on the same settings as the test worker."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.app import create_app
from botmgr.models import (
    Binding,
    BindingStatus,
    Bot,
    BotStatus,
    Channel,
    ChannelStats,
    DeliveryStatus,
    Post,
    PostStatus,
    WebhookDelivery,
    WebhookEndpoint,
)
from botmgr.security import Cipher
from botmgr.settings import Settings
from tests.harness.client import BASE_URL
from tests.harness.env import USER, settings_from

BASE = BASE_URL  # the console is served by the same app the API clients reach


@pytest.fixture
async def console_app(tg_env: dict[str, str]) -> AsyncIterator[FastAPI]:
    app = create_app(settings_from(tg_env))
    async with app.router.lifespan_context(app):
        yield app


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, timeout=60)


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


async def csrf_of(client: httpx.AsyncClient) -> str:
    """The session's CSRF token, as the console's pages carry it (admin/csrf.py)."""
    match = CSRF_META.search((await client.get("/admin/")).text)
    assert match, "no CSRF token on the index page"
    return match.group(1)


async def login(client: httpx.AsyncClient, settings: Settings) -> str:
    """Log in through the form; the client then sends the session's CSRF token with
    every request (as console.js does for scripts); the token is returned."""
    response = await client.post(
        "/admin/login",
        data={"username": USER, "password": settings.auth_password.get_secret_value()},
    )
    assert response.status_code == 302, response.text
    assert "botmgr_console" in client.cookies
    token = await csrf_of(client)
    client.headers["X-CSRF-Token"] = token
    return token


@pytest.fixture
async def console(console_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(console_app) as client:
        await login(client, console_app.state.settings)
        yield client


@pytest.fixture
async def anonymous(console_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(console_app) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


async def seed(db: AsyncSession, settings: Settings, *, days: int = 10) -> dict[str, Any]:
    """Rows written directly (no Telegram): a bot with an active and an invalid binding,
    posts (sent and failed), and ``days`` days of statistics for the active channel."""
    cipher = Cipher.from_settings(settings)
    tg_id = secrets.randbelow(10**9) + 10**9
    token = f"{tg_id}:{secrets.token_urlsafe(27)}"
    bot = Bot(
        tg_id=tg_id,
        alias="seed",
        username=unique("seed_") + "_bot",
        first_name="Seed",
        token_encrypted=cipher.encrypt(token),
        status=BotStatus.active,
    )
    other = Bot(
        tg_id=tg_id + 1,
        alias="other",
        username=unique("other_") + "_bot",
        first_name="Other",
        token_encrypted=cipher.encrypt(f"{tg_id + 1}:{'x' * 30}"),
        status=BotStatus.invalid,
        status_reason="token rejected: seed",
    )
    news = Channel(
        tg_id=secrets.randbelow(10**9) + 10**9,
        title=unique("News "),
        username=unique("news"),
        reference="@news",
    )
    sport = Channel(
        tg_id=secrets.randbelow(10**9) + 10**9,
        title=unique("Sport "),
        username=unique("sport"),
        reference="@sport",
    )
    db.add_all([bot, other, news, sport])
    await db.flush()
    active = Binding(
        bot_id=bot.id,
        channel_id=news.id,
        status=BindingStatus.active,
        last_checked_at=datetime.now(UTC),
    )
    invalid = Binding(
        bot_id=other.id,
        channel_id=sport.id,
        status=BindingStatus.invalid,
        reason="bot is not an admin of the channel",
    )
    db.add_all([active, invalid])
    await db.flush()
    sent = Post(
        channel_id=news.id,
        binding_id=active.id,
        markdown="hello",
        random_id=1 + tg_id,
        status=PostStatus.sent,
        message_id=42,
        task_id=unique("t-"),
        sent_at=datetime.now(UTC),
    )
    failed = Post(
        channel_id=news.id,
        binding_id=active.id,
        markdown="oops",
        random_id=2 + tg_id,
        status=PostStatus.failed,
        error="Telegram refused the message: seed",
        task_id=unique("t-"),
    )
    today = datetime.now(UTC).date()
    stats = [
        ChannelStats(
            channel_id=news.id,
            day=today - timedelta(days=days - i),
            posts=(i * 7) % 5 + 1,
            views=1000 + 350 * i + (i % 3) * 400,
            subscribers=500 + 12 * i,
        )
        for i in range(days)
    ]
    hook = WebhookEndpoint(
        url="https://1.1.1.1/seed",
        secret_encrypted=cipher.encrypt("seed-secret-0123456789"),
        events=["post.sent"],
    )
    db.add_all([sent, failed, *stats, hook])
    await db.flush()
    delivery = WebhookDelivery(
        endpoint_id=hook.id,
        event_id=unique("e-"),
        event="post.sent",
        data={"post_id": sent.id},
        status=DeliveryStatus.failed,
        attempts=3,
        last_status=500,
        last_error="HTTP 500: seed",
        next_attempt_at=datetime.now(UTC),
    )
    db.add(delivery)
    await db.commit()
    return {
        "bot": bot,
        "other": other,
        "news": news,
        "sport": sport,
        "active": active,
        "invalid": invalid,
        "sent": sent,
        "failed": failed,
        "token": token,
        "hook": hook,
        "delivery": delivery,
        "first_day": today - timedelta(days=days),
        "last_day": today - timedelta(days=1),
    }


async def wait_done(console: httpx.AsyncClient, task_id: str, seconds: float = 60) -> str:
    """The task's row on the Tasks page once it is no longer pending."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        page = (await console.get("/admin/tasks")).text
        row = page[page.index(f'data-task-id="{task_id}"') :]
        row = row[: row.index("</tr>")]
        if "SUCCESS" in row or "FAILURE" in row:
            return row
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"task {task_id} not done: {row}")
        await asyncio.sleep(0.2)
