"""Bots and bound channels in tgemu, set up through the real API and worker."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from celery import Celery

from botmgr.tasks.names import CHECK_BINDING
from tests.fixtures.service import run_task

WAIT = {"Prefer": "wait=30"}


async def register(api: httpx.AsyncClient, bot: dict) -> int:
    response = await api.post("/bots/", json={"alias": "fleet", "token": bot["token"]})
    assert response.status_code == 200, response.text
    return response.json()["data"]["id"]


async def bind(
    api: httpx.AsyncClient,
    emu: Any,
    celery: Celery,
    bot: dict,
    bot_db_id: int,
    title: str = "Fleet",
) -> dict:
    """A public channel where ``bot`` is an admin that can post, bound and active."""
    channel = emu.create_channel(title, username=emu.unique("fleet"))
    emu.grant_admin(channel["id"], bot["id"])
    response = await api.post(
        "/channels/", headers=WAIT, json={"channel": "@" + channel["username"], "bot_id": bot_db_id}
    )
    assert response.status_code == 200, response.text
    channel["binding_id"] = response.json()["binding_id"]
    if response.json()["status"] != "active":
        checked = await run_task(celery, CHECK_BINDING, channel["binding_id"])
        assert checked["body"]["status"] == "active", checked
    return channel


async def fleet(
    api: httpx.AsyncClient, emu: Any, celery: Celery, bots: int, channels_per_bot: int
) -> list[tuple[dict, dict]]:
    """``bots`` registered bots with ``channels_per_bot`` active channels each:
    [(tgemu bot, tgemu channel with binding_id)]."""
    made = [emu.create_bot() for _ in range(bots)]
    ids = [await register(api, bot) for bot in made]
    pairs = [
        (bot, db_id) for bot, db_id in zip(made, ids, strict=True) for _ in range(channels_per_bot)
    ]
    channels = []
    for start in range(0, len(pairs), 8):  # a few at a time: the worker pool is small
        channels += await asyncio.gather(
            *(bind(api, emu, celery, bot, db_id) for bot, db_id in pairs[start : start + 8])
        )
    return [(bot, channel) for (bot, _), channel in zip(pairs, channels, strict=True)]
