"""The steps tests and benchmarks drive the service through, over its HTTP API: register a
bot, bind a channel until it is active, post, wait for a task. Each asserts the answer a
successful step gets, so a failure names the step and shows the API's answer.

``api`` is any httpx.AsyncClient on the API (in-process or a real ``botmgr api``); ``emu``
a TgEmu; ``celery`` a sending Celery app on the broker the workers consume.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from typing import Any

import httpx
from celery import Celery

from botmgr.tasks.names import CHECK_BINDING

WAIT = {"Prefer": "wait=30"}  # hold the request until the worker answered (≤ 30 s)


async def run_task(celery: Celery, name: str, *args: Any, **kwargs: Any) -> dict:
    """Send a task by name to the workers and wait for its result (≤ 60 s)."""
    result = celery.send_task(name, args=list(args), kwargs=kwargs)
    return await asyncio.to_thread(result.get, timeout=60)


async def register_bot(
    api: httpx.AsyncClient, bot: dict, *, alias: str = "a", **fields: Any
) -> int:
    """Register the tgemu ``bot`` by its token (``fields``: more of POST /bots/'s body);
    its id in the service."""
    response = await api.post("/bots/", json={"alias": alias, "token": bot["token"], **fields})
    assert response.status_code == 200, response.text
    return response.json()["data"]["id"]


async def bind_channel(api: httpx.AsyncClient, channel: dict, *, bot_id: int | None = None) -> dict:
    """POST /channels/ for the public tgemu ``channel`` by @username, by ``bot_id`` or
    arbitrated, waiting for the worker; its answer (``binding_id``, ``status``, …)."""
    body: dict[str, Any] = {"channel": "@" + channel["username"]}
    if bot_id is not None:
        body["bot_id"] = bot_id
    response = await api.post("/channels/", json=body, headers=WAIT)
    assert response.status_code == 200, response.text
    return response.json()


async def ensure_active(celery: Celery, bound: dict) -> None:
    """A binding answered ``new`` (rights not seen yet) is checked until it is active."""
    if bound["status"] != "active":
        checked = await run_task(celery, CHECK_BINDING, bound["binding_id"])
        assert checked["body"]["status"] == "active", checked


async def bound_channel(
    api: httpx.AsyncClient,
    emu: Any,
    celery: Celery,
    bot: dict,
    bot_id: int | None = None,
    *,
    title: str = "Fleet",
    prefix: str = "fleet",
    grant_first: bool = True,
) -> dict:
    """A new public channel where the registered ``bot`` is an admin that can post, bound
    (to ``bot_id``, or arbitrated) and active; the tgemu channel with its ``binding_id``.

    ``grant_first=False`` binds before the bot is made admin, so the binding starts
    ``new`` and a rights check makes it active.
    """
    channel = emu.create_channel(title, username=emu.unique(prefix))
    if grant_first:
        emu.grant_admin(channel["id"], bot["id"])
        bound = await bind_channel(api, channel, bot_id=bot_id)
    else:
        bound = await bind_channel(api, channel, bot_id=bot_id)
        emu.grant_admin(channel["id"], bot["id"])
    channel["binding_id"] = bound["binding_id"]
    await ensure_active(celery, bound)
    return channel


async def fleet(
    api: httpx.AsyncClient, emu: Any, celery: Celery, bots: int, channels_per_bot: int
) -> list[tuple[dict, dict]]:
    """``bots`` registered bots with ``channels_per_bot`` active channels each:
    [(tgemu bot, tgemu channel with binding_id)]."""
    made = [emu.create_bot() for _ in range(bots)]
    ids = [await register_bot(api, bot, alias="fleet") for bot in made]
    pairs = [
        (bot, db_id) for bot, db_id in zip(made, ids, strict=True) for _ in range(channels_per_bot)
    ]
    channels = []
    for start in range(0, len(pairs), 8):  # a few at a time: the worker pool is small
        channels += await asyncio.gather(
            *(
                bound_channel(api, emu, celery, bot, db_id)
                for bot, db_id in pairs[start : start + 8]
            )
        )
    return [(bot, channel) for (bot, _), channel in zip(pairs, channels, strict=True)]


async def post(
    api: httpx.AsyncClient, channel_id: int | str, markdown: str, *, wait: bool = False
) -> dict:
    """POST /messages: with ``wait``, sent (200, ``message_id`` and ``link``); without,
    accepted and queued (202, ``task_id``). The answer's body."""
    response = await api.post(
        "/messages",
        json={"channel_id": channel_id, "message": markdown},
        headers=WAIT if wait else None,
    )
    assert response.status_code == (200 if wait else 202), response.text
    return response.json()


async def wait_task(
    api: httpx.AsyncClient,
    task_id: str,
    *,
    tries: int = 100,
    interval: float = 0.1,
    seen: set[str] | None = None,
) -> dict:
    """GET /tasks/{id} until it succeeded or failed, at most ``tries`` times; the last
    answer (the caller asserts on it). ``seen`` collects every state on the way."""
    for _ in range(tries):
        task = (await api.get(f"/tasks/{task_id}")).json()
        if seen is not None:
            seen.add(task["task_status"])
        if task["task_status"] in ("SUCCESS", "FAILURE"):
            break
        await asyncio.sleep(interval)
    return task


def delivered(emu: Any, channels: Iterable[dict]) -> Counter[int]:
    """How often each random_id stands in the channels' messages: 1 each when every post
    went out exactly once."""
    return Counter(m["random_id"] for c in channels for m in emu.messages(c["id"]))
