"""/messages and /media over HTTP (issue 16): the answers' shapes, the post_id in every
answer of POST /messages, what needs no Telegram (reschedule, cancel, edit before
sending) and every refusal as a 4xx JSON body. No worker consumes this Redis prefix: the
tasks are queued and stay so (tests/integration/test_rich_posts.py sends them)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.harness.db import insert_bot
from tests.harness.env import settings_from

pytestmark = pytest.mark.usefixtures("clean_db")
PNG = b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(64)


async def _channels(
    api: httpx.AsyncClient, db: AsyncSession, env: dict[str, str], count: int = 1
) -> list[int]:
    """Channels bound (``new``) to a fixture bot: posts to them are accepted and queued."""
    bot = await insert_bot(db, settings_from(env))
    ids = [7_000_000 + secrets.randbelow(10**6) for _ in range(count)]
    for tg_id in ids:
        response = await api.post("/channels/", json={"channel": tg_id, "bot_id": bot.id})
        assert response.status_code == 202, response.text
    return ids


def _later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def test_every_answer_of_post_messages_names_its_posts(
    api: httpx.AsyncClient, db: AsyncSession, service_env: dict[str, str]
) -> None:
    [one, *more] = await _channels(api, db, service_env, count=3)
    response = await api.post("/messages", json={"channel_id": one, "message": "hi"})
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"task_id", "post_id"}
    assert response.headers["location"] == f"/tasks/{body['task_id']}"
    got = (await api.get(f"/messages/{body['post_id']}")).json()
    assert (got["status"], got["channel_id"], got["task_id"]) == ("queued", one, body["task_id"])

    response = await api.post(
        "/messages", json={"channel_ids": [one, *more], "message": "all", "silent": True}
    )
    assert response.status_code == 202
    fan = response.json()
    assert len(fan["post_id"]) == 3 and len(set(fan["task_id"])) == 3
    assert [p["channel_id"] for p in fan["posts"]] == [one, *more]
    assert response.headers["location"] == f"/messages/groups/{fan['group_id']}"
    group = (await api.get(fan["group_id"] and f"/messages/groups/{fan['group_id']}")).json()
    assert [p["post_id"] for p in group["messages"]] == fan["post_id"]
    assert all(p["silent"] for p in group["messages"])
    listed = (await api.get("/messages", params={"group": fan["group_id"]})).json()
    assert listed["total"] == 3

    # An Idempotency-Key replay answers the same post.
    keyed = {"Idempotency-Key": "k-" + secrets.token_hex(8)}
    first = await api.post("/messages", json={"channel_id": one, "message": "k"}, headers=keyed)
    again = await api.post("/messages", json={"channel_id": one, "message": "k"}, headers=keyed)
    assert first.json() == again.json() and "post_id" in again.json()


async def test_a_scheduled_post_is_rescheduled_edited_and_cancelled_in_place(
    api: httpx.AsyncClient, db: AsyncSession, service_env: dict[str, str]
) -> None:
    [channel] = await _channels(api, db, service_env)
    buttons = [[{"text": "Open", "url": "https://example.org"}]]
    response = await api.post(
        "/messages",
        json={
            "channel_id": channel,
            "message": "later",
            "send_at": _later(3600),
            "buttons": buttons,
        },
    )
    post_id = response.json()["post_id"]
    got = (await api.get(f"/messages/{post_id}")).json()
    assert got["scheduled"] and got["buttons"] == buttons
    response = await api.patch(
        f"/messages/{post_id}", json={"send_at": _later(7200), "message": "later still"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["message"] == "later still" and response.json()["scheduled"]
    scheduled = (await api.get("/messages", params={"status": "queued", "order": "due"})).json()
    assert [p["post_id"] for p in scheduled["messages"]] == [post_id]
    response = await api.delete(f"/messages/{post_id}")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert (await api.delete(f"/messages/{post_id}")).status_code == 200  # again: no error
    for method, path, body in (
        ("PATCH", f"/messages/{post_id}", {"message": "x"}),
        ("POST", f"/messages/{post_id}/pin", None),
    ):
        refused = await api.request(method, path, json=body)
        assert refused.status_code == 409 and "cancelled" in refused.json()["message"]


@pytest.mark.parametrize(
    ("extra", "status", "words"),
    [
        ({"buttons": [[{"text": "x", "url": "javascript:alert(1)"}]]}, 422, "http"),
        ({"buttons": [[{"text": "x", "url": "https://e.org"}] * 9]}, 422, "8 a row"),
        ({"buttons": [[{"text": "", "url": "https://e.org"}]]}, 422, "text"),
        ({"media": [99999999]}, 422, "unknown media_id"),
        ({"send_at": "2026-12-01T09:00:00"}, 422, "timezone"),
        ({"delete_after": 200000}, 422, "delete_after"),
        ({"channel_ids": [1, 2]}, 422, "not both"),
        ({"message": "x" * 5000}, 422, "4096"),
    ],
)
async def test_refusals_are_4xx_json(
    api: httpx.AsyncClient,
    db: AsyncSession,
    service_env: dict[str, str],
    extra: dict,
    status: int,
    words: str,
) -> None:
    [channel] = await _channels(api, db, service_env)
    body = {"channel_id": channel, "message": "hello", **extra}
    response = await api.post("/messages", json=body)
    assert response.status_code == status, response.text
    assert words in response.text


async def test_media_upload_and_caption_limits(
    api: httpx.AsyncClient, db: AsyncSession, service_env: dict[str, str]
) -> None:
    [channel] = await _channels(api, db, service_env)
    response = await api.post("/media", files={"file": ("../../x.png", PNG, "text/plain")})
    assert response.status_code == 201, response.text
    photo = response.json()
    assert (photo["kind"], photo["mime"], photo["name"], photo["size"]) == (
        "photo",
        "image/png",
        "x.png",
        len(PNG),
    )
    assert (await api.get(f"/media/{photo['media_id']}")).json() == photo
    doc = (await api.post("/media", files={"file": ("a.bin", b"plain bytes")})).json()
    assert doc["kind"] == "document" and doc["mime"] == "application/octet-stream"
    refused = await api.post("/media", files={"file": ("a.txt", b"text")}, data={"kind": "photo"})
    assert refused.status_code == 422 and "JPEG, PNG or WebP" in refused.json()["message"]
    assert (await api.post("/media", files={"file": ("e", b"")})).status_code == 422
    long = {"channel_id": channel, "message": "x" * 1100, "media": [photo["media_id"]]}
    response = await api.post("/messages", json=long)
    assert response.status_code == 422 and "1024" in response.json()["message"]
    ok = {"channel_id": channel, "message": "", "media": [photo["media_id"]]}
    response = await api.post("/messages", json=ok)
    assert response.status_code == 202
    got = (await api.get(f"/messages/{response.json()['post_id']}")).json()
    assert got["media"] == [photo["media_id"]]


async def test_unknown_posts_and_groups_are_404(api: httpx.AsyncClient) -> None:
    for method, path in (
        ("GET", "/messages/999999"),
        ("PATCH", "/messages/999999"),
        ("DELETE", "/messages/999999"),
        ("POST", "/messages/999999/pin"),
        ("GET", "/messages/groups/nope"),
        ("DELETE", "/messages/groups/nope"),
        ("GET", "/media/999999"),
    ):
        response = await api.request(method, path, json={"message": "x"})
        assert response.status_code == 404, (method, path, response.text)
        assert "message" in response.json()
