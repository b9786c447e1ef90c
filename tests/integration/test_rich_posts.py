"""Rich posts end to end (issue 16): a real worker, beat and tgemu, checked against what
tgemu stores (its control API shows reply_markup, media, silent, no_webpage, pinned,
edit_date; deleted messages vanish).

Short timeouts stand in for production's, as in tests/resilience/test_reconciler.py:
countdowns ≤ 2 s and the reconciler every 2 s, so a post due in 5 s is published by the
reconciler (the due-time dispatch), not by a long countdown.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from celery import Celery

from botmgr.settings import Settings
from botmgr.worker.app import make_celery
from tests.harness.client import api_client
from tests.harness.env import SHORT_WAITS, drop_redis_prefix, make_env, settings_from
from tests.harness.flows import WAIT, bound_channel, delivered, fleet, register_bot, wait_task
from tests.harness.images import png
from tests.harness.processes import BeatProcess, WorkerProcess, running
from tests.harness.tgemu import TgEmu

pytestmark = pytest.mark.timeout(240)
SHORT = SHORT_WAITS
BUTTONS = [
    [
        {"text": "Read", "url": "https://example.org/a"},
        {"text": "Bot", "url": "tg://resolve?domain=x"},
    ]
]
T = TypeVar("T")


@dataclass
class Stack:
    settings: Settings
    celery: Celery
    worker: WorkerProcess


@pytest.fixture(scope="module")
def stack(
    tgemu: TgEmu, private_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = make_env(private_db, tgemu, **SHORT)
    logs = tmp_path_factory.mktemp("rich")
    settings = settings_from(env)
    try:
        with (
            running(WorkerProcess(env, logs / "worker.log", concurrency=4)) as worker,
            running(BeatProcess(env, logs / "beat.log")),
        ):
            yield Stack(settings, make_celery(settings), worker)
    finally:
        drop_redis_prefix(env["BOTMGR_REDIS_PREFIX"])


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(stack.settings) as client:
        yield client


async def until(check: Callable[[], T | None], within: float, step: float = 0.2) -> T:
    """``check()`` once it is truthy; fails after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(step)


async def a_channel(api: httpx.AsyncClient, emu: TgEmu, stack: Stack, **rights: bool) -> dict:
    bot = emu.create_bot()
    await register_bot(api, bot)
    channel = await bound_channel(api, emu, stack.celery, bot)
    if rights:
        emu.grant_admin(channel["id"], bot["id"], post_messages=True, **rights)
    return channel


def _at(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def _done(api: httpx.AsyncClient, response: httpx.Response) -> dict:
    """A 202's task, waited for: its result body (asserting it succeeded)."""
    assert response.status_code == 202, response.text
    task = await wait_task(api, response.json()["task_id"], tries=300)
    assert task["task_status"] == "SUCCESS", task
    return task["task_result"]


async def test_scheduled_cancelled_and_rescheduled_posts(
    api: httpx.AsyncClient, tgemu: TgEmu, stack: Stack
) -> None:
    channel = await a_channel(api, tgemu, stack)
    texts = lambda: [m["text"] for m in tgemu.messages(channel["id"])]  # noqa: E731
    start, send_at = time.monotonic(), _at(5)
    ontime = await api.post(
        "/messages",
        json={"channel_id": channel["id"], "message": "on time", "send_at": send_at.isoformat()},
    )
    cancelled = await api.post(
        "/messages",
        json={"channel_id": channel["id"], "message": "never", "send_at": _at(3).isoformat()},
    )
    moved = await api.post(
        "/messages",
        json={"channel_id": channel["id"], "message": "moved", "send_at": _at(4).isoformat()},
    )
    assert (await api.delete(f"/messages/{cancelled.json()['post_id']}")).status_code == 200
    moved_to = _at(12)
    response = await api.patch(
        f"/messages/{moved.json()['post_id']}", json={"send_at": moved_to.isoformat()}
    )
    assert response.status_code == 200 and response.json()["scheduled"], response.text

    await until(lambda: "on time" in texts(), 12, step=0.05)
    arrived = time.monotonic() - start
    assert 5 <= arrived <= 10, arrived
    [message] = [m for m in tgemu.messages(channel["id"]) if m["text"] == "on time"]
    assert message["date"] >= int(send_at.timestamp())
    assert "moved" not in texts()  # not at its first time (4 s)
    await until(lambda: "moved" in texts(), 20)
    assert time.time() >= moved_to.timestamp() - 0.5
    await asyncio.sleep(3)  # every stale copy has run by now
    assert sorted(texts()) == ["moved", "on time"]  # once each; the cancelled one never
    got = (await api.get(f"/messages/{ontime.json()['post_id']}")).json()
    assert got["status"] == "sent" and got["link"].endswith(f"/{message['id']}")
    assert (await api.get(f"/messages/{cancelled.json()['post_id']}")).json()[
        "status"
    ] == "cancelled"


async def test_fan_out_to_20_channels_edit_pin_and_delete_the_group(
    api: httpx.AsyncClient, tgemu: TgEmu, stack: Stack
) -> None:
    pairs = await fleet(api, tgemu, stack.celery, bots=4, channels_per_bot=5)
    channels = [c for _, c in pairs]
    for bot, channel in pairs:  # edit and pin need the edit_messages right
        tgemu.grant_admin(channel["id"], bot["id"], post_messages=True, edit_messages=True)
    response = await api.post(
        "/messages",
        json={"channel_ids": [c["id"] for c in channels], "message": "to all", "buttons": BUTTONS},
    )
    assert response.status_code == 202, response.text
    group = response.json()["group_id"]

    async def group_posts() -> list[dict]:
        return (await api.get(f"/messages/groups/{group}")).json()["messages"]

    async def settled(status: str) -> list[dict]:
        deadline = time.monotonic() + 60
        while True:
            posts = await group_posts()
            if all(p["status"] == status for p in posts):
                return posts
            assert time.monotonic() < deadline, posts
            await asyncio.sleep(0.3)

    posts = await settled("sent")
    counts = delivered(tgemu, channels)
    assert sorted(counts.values()) == [1] * 20  # once in each channel
    assert {p["channel_id"] for p in posts} == {c["id"] for c in channels}

    new_buttons = [[{"text": "Updated", "url": "https://example.org/b"}]]
    edit = await api.patch(
        f"/messages/groups/{group}", json={"message": "**edited**", "buttons": new_buttons}
    )
    assert edit.status_code == 202 and all(p["task_id"] for p in edit.json()["posts"])
    for ref in edit.json()["posts"]:
        task = await wait_task(api, ref["task_id"], tries=300)
        assert task["task_result"]["action"] == "edited", task
    for channel in channels:
        [message] = tgemu.messages(channel["id"])
        assert message["text"] == "edited" and message["edit_date"]
        assert message["reply_markup"] == [[{"text": "Updated", "url": "https://example.org/b"}]]

    pin = await api.post(f"/messages/{posts[0]['post_id']}/pin")
    assert (await _done(api, pin))["action"] == "pinned"
    [pinned] = tgemu.messages(posts[0]["channel_id"])
    assert pinned["pinned"] and pinned["pin_silent"]
    unpin = await api.delete(f"/messages/{posts[0]['post_id']}/pin")
    assert (await _done(api, unpin))["action"] == "unpinned"
    assert not tgemu.messages(posts[0]["channel_id"])[0]["pinned"]

    removed = await api.delete(f"/messages/groups/{group}")
    assert removed.status_code == 202
    await settled("deleted")
    assert all(tgemu.messages(c["id"]) == [] for c in channels)


async def test_options_buttons_and_delete_after_arrive(
    api: httpx.AsyncClient, tgemu: TgEmu, stack: Stack
) -> None:
    channel = await a_channel(api, tgemu, stack)
    response = await api.post(
        "/messages",
        json={
            "channel_id": channel["id"],
            "message": "quiet https://example.org",
            "silent": True,
            "disable_preview": True,
            "buttons": BUTTONS,
            "delete_after": 3,
        },
        headers=WAIT,
    )
    assert response.status_code == 200, response.text
    [message] = tgemu.messages(channel["id"])
    assert message["silent"] and message["no_webpage"]
    assert message["reply_markup"] == BUTTONS
    sent_at = time.monotonic()
    await until(lambda: tgemu.messages(channel["id"]) == [], 15)
    assert time.monotonic() - sent_at >= 2.5  # not before it was due
    got = (await api.get(f"/messages/{response.json()['post_id']}")).json()
    assert got["status"] == "deleted" and got["deleted_at"]


async def test_a_photo_and_an_album_arrive_once_each(
    api: httpx.AsyncClient, tgemu: TgEmu, stack: Stack
) -> None:
    channel = await a_channel(api, tgemu, stack)
    ids = []
    for index in range(4):
        upload = await api.post(
            "/media", files={"file": (f"p{index}.png", png(40 + index, 30), "image/png")}
        )
        assert upload.status_code == 201, upload.text
        ids.append(upload.json()["media_id"])
    photo = await api.post(
        "/messages",
        json={"channel_id": channel["id"], "message": "*one* photo", "media": ids[:1]},
        headers=WAIT,
    )
    assert photo.status_code == 200, photo.text
    album = await api.post(
        "/messages",
        json={"channel_id": channel["id"], "message": "an album", "media": ids[1:]},
        headers=WAIT,
    )
    assert album.status_code == 200, album.text
    assert len(album.json()["message_ids"]) == 3
    messages = tgemu.messages(channel["id"])
    assert [m["media"]["kind"] for m in messages] == ["photo"] * 4
    assert messages[0]["text"] == "one photo" and messages[0]["media"]["grouped_id"] is None
    grouped = {m["media"]["grouped_id"] for m in messages[1:]}
    assert len(grouped) == 1 and None not in grouped
    assert messages[1]["text"] == "an album"
    assert sorted(delivered(tgemu, [channel]).values()) == [1] * 4


async def test_telegram_refusals_are_answers_with_its_reason(
    api: httpx.AsyncClient, tgemu: TgEmu, stack: Stack
) -> None:
    channel = await a_channel(api, tgemu, stack)  # post_messages only: no edit_messages
    sent = await api.post(
        "/messages", json={"channel_id": channel["id"], "message": "x"}, headers=WAIT
    )
    post_id, message_id = sent.json()["post_id"], sent.json()["message_id"]
    pin = await api.post(f"/messages/{post_id}/pin", headers=WAIT)
    assert pin.status_code == 409, pin.text  # pinning needs the edit_messages right
    assert "Telegram refused to pin" in pin.json()["message"]
    tgemu.backdate(channel["id"], message_id, 49 * 3600)  # past Telegram's 48 h
    delete = await api.delete(f"/messages/{post_id}", headers=WAIT)
    assert delete.status_code == 409 and "MESSAGE_DELETE_FORBIDDEN" in delete.json()["message"]
    assert len(tgemu.messages(channel["id"])) == 1
    # Edit too late: channel posts have no edit limit by default (tgemu's default too);
    # where Telegram sets one, a post past it is refused with its reason.
    tgemu.config(edit_time_limit=48 * 3600)
    try:
        edit = await api.patch(f"/messages/{post_id}", json={"message": "late"}, headers=WAIT)
    finally:
        tgemu.config(edit_time_limit=0)
    assert edit.status_code == 409 and "MESSAGE_EDIT_TIME_EXPIRED" in edit.json()["message"]
    assert [m["text"] for m in tgemu.messages(channel["id"])] == ["x"]
    got = (await api.get(f"/messages/{post_id}")).json()
    assert got["status"] == "sent"
    refused: list[Awaitable[httpx.Response]] = [
        api.post(
            "/messages",
            json={
                "channel_id": channel["id"],
                "message": "x",
                "buttons": [[{"text": "a", "url": "file:///etc/passwd"}]],
            },
        ),
        api.post("/media", files={"file": ("big.png", png(5, 5) + b"\0" * (11 * 1024 * 1024))}),
    ]
    answers: list[Any] = await asyncio.gather(*refused)
    assert answers[0].status_code == 422 and "http" in answers[0].json()["message"]
    assert answers[1].status_code == 422 and "10 MB" in answers[1].json()["message"]
