"""Arbitration under concurrency, against PostgreSQL: 50 binds at once over 5 bots.

Invite links keep every binding ``new`` whatever the worker does, so the counts below are
exactly the arbitration's choices."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.models import Binding, BotStatus
from tests.harness.db import insert_bot
from tests.harness.env import settings_from


async def test_fifty_concurrent_binds_spread_within_one(
    api: httpx.AsyncClient, db: AsyncSession, clean_db: None, service_env: dict[str, str]
) -> None:
    settings = settings_from(service_env)
    bots = [await insert_bot(db, settings) for _ in range(5)]
    await insert_bot(db, settings, status=BotStatus.invalid)  # never chosen
    await insert_bot(db, settings, status=BotStatus.deleted)  # never chosen

    async def bind(i: int) -> httpx.Response:
        return await api.post(
            "/channels/", json={"channel": f"https://t.me/+inv{i}x{secrets.token_hex(6)}"}
        )

    responses = await asyncio.gather(*(bind(i) for i in range(50)))
    assert all(r.status_code == 202 for r in responses), [r.text for r in responses]
    assert len({r.json()["task_id"] for r in responses}) == 50
    assert all(r.headers["location"] == f"/tasks/{r.json()['task_id']}" for r in responses)

    rows = (await db.execute(select(Binding.bot_id))).scalars().all()
    counts = Counter(rows)
    assert len(rows) == 50
    assert set(counts) == {b.id for b in bots}
    assert max(counts.values()) - min(counts.values()) <= 1, counts


async def test_least_loaded_counts_only_new_and_active(
    api: httpx.AsyncClient, db: AsyncSession, clean_db: None, service_env: dict[str, str]
) -> None:
    settings = settings_from(service_env)
    first, second = [await insert_bot(db, settings) for _ in range(2)]
    # The first bot gets three bindings; the first is unbound, the second invalid (one at
    # a time: a bot waits for at most one invite-link channel, see adoption.attach_invite).
    for i, later in enumerate(("inactive", "invalid", None)):
        response = await api.post(
            "/channels/", json={"channel": f"https://t.me/+a{i}bcdefg", "bot_id": first.id}
        )
        assert response.status_code == 202
        if later is not None:
            row = (await db.execute(select(Binding).order_by(Binding.id.desc()))).scalars().first()
            assert row is not None
            row.status = later
            await db.commit()
    # load: first = 1 (one new), second = 0 → second, then tie (1, 1) → first (lower id)
    for i in range(2):
        await api.post("/channels/", json={"channel": f"https://t.me/+b{i}bcdefg"})
    rows = (await db.execute(select(Binding.bot_id).order_by(Binding.id))).scalars().all()
    assert rows[3:] == [second.id, first.id]


async def test_no_active_bot_is_503(api: httpx.AsyncClient, clean_db: None) -> None:
    response = await api.post("/channels/", json={"channel": "@some_channel"})
    assert response.status_code == 503
    assert set(response.json()) == {"message"}


async def test_garbage_reference_is_503(api: httpx.AsyncClient) -> None:
    for garbage in ("hello", "https://example.com/x", "-12345", "@ab"):
        response = await api.post("/channels/", json={"channel": garbage})
        assert response.status_code == 503
        assert response.json() == {"message": "Задан некорректный идентификатор канала"}
