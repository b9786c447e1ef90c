"""Idempotency-Key on the creating routes, through the in-process app on the real
PostgreSQL: a retry with the key gets the first answer and creates nothing; concurrent
duplicates make one post. No worker consumes this Redis prefix: tasks stay queued."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from botmgr.app import create_app
from botmgr.deps import UnitDep
from botmgr.idempotency import service
from botmgr.idempotency.api import BAD_KEY, REPLAYED, idempotent
from botmgr.models import Binding, Channel, IdempotencyKey, Post
from botmgr.security import require_operator
from botmgr.worker.app import make_celery
from tests.harness.db import insert_bot
from tests.harness.env import USER, settings_from

KEY = "Idempotency-Key"


def new_key() -> str:
    return f"retry-{uuid.uuid4()}"


async def bound_channel(api: httpx.AsyncClient, db: AsyncSession, env: dict[str, str]) -> int:
    """A channel with a ``new`` binding (its bot not an admin yet): posts are accepted."""
    bot = await insert_bot(db, settings_from(env))
    tg_id = secrets.randbelow(10**9) + 10**9
    response = await api.post("/channels/", json={"channel": tg_id, "bot_id": bot.id})
    assert response.status_code == 202, response.text
    return tg_id


async def posts_to(db: AsyncSession, tg_id: int) -> list[Post]:
    rows = await db.execute(
        select(Post).join(Channel, Channel.id == Post.channel_id).where(Channel.tg_id == tg_id)
    )
    posts = list(rows.scalars())
    await db.commit()  # ends the read: the next one sees what the API committed since
    return posts


async def post(
    api: httpx.AsyncClient, tg_id: int, key: str | bytes, text: str = "hi"
) -> httpx.Response:
    return await api.post(
        "/messages", json={"channel_id": tg_id, "message": text}, headers={KEY: key}
    )


async def test_a_retry_gets_the_first_answer_and_creates_nothing(
    api: httpx.AsyncClient, db: AsyncSession, service_env: dict[str, str]
) -> None:
    tg_id = await bound_channel(api, db, service_env)
    key = new_key()
    first = await post(api, tg_id, key)
    # The same body serialised otherwise (key order, spacing) is the same request.
    again = await api.post(
        "/messages",
        content=json.dumps({"message": "hi", "channel_id": tg_id}, indent=2),
        headers={KEY: key, "content-type": "application/json"},
    )
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert REPLAYED.lower() not in first.headers and again.headers[REPLAYED] == "true"
    (only,) = await posts_to(db, tg_id)
    assert only.task_id == first.json()["task_id"]


async def test_the_same_key_with_another_body_is_422(
    api: httpx.AsyncClient, db: AsyncSession, service_env: dict[str, str]
) -> None:
    tg_id = await bound_channel(api, db, service_env)
    key = new_key()
    assert (await post(api, tg_id, key, "first")).status_code == 202
    response = await post(api, tg_id, key, "second")
    assert response.status_code == 422
    assert response.json() == {"message": service.DIFFERENT_REQUEST}
    assert [p.markdown for p in await posts_to(db, tg_id)] == ["first"]


async def test_concurrent_duplicates_make_one_post(
    api: httpx.AsyncClient, db: AsyncSession, service_env: dict[str, str]
) -> None:
    tg_id = await bound_channel(api, db, service_env)
    key = new_key()
    responses = await asyncio.gather(*(post(api, tg_id, key) for _ in range(4)))
    assert [r.status_code for r in responses] == [202] * 4
    assert len({r.json()["task_id"] for r in responses}) == 1
    assert sum(REPLAYED.lower() not in r.headers for r in responses) == 1
    assert len(await posts_to(db, tg_id)) == 1


async def hold_claim(conn: Any, key: str, body: dict[str, Any]) -> None:
    """What a first request in flight has done: claimed the key, not committed yet."""
    content = json.dumps(body).encode()
    await conn.execute(
        insert(IdempotencyKey).values(
            scope="POST /messages",
            principal=USER,
            key=key,
            fingerprint=service.fingerprint("POST", "/messages", "", content),
            headers=[],
            expires_at=func.now() + timedelta(hours=1),
        )
    )


async def test_a_retry_waits_for_the_request_in_flight_and_replays_it(
    api: httpx.AsyncClient, db_engine: AsyncEngine, db: AsyncSession, service_env: dict[str, str]
) -> None:
    tg_id = await bound_channel(api, db, service_env)
    key, body = new_key(), {"channel_id": tg_id, "message": "hi"}
    async with db_engine.connect() as first:
        await hold_claim(first, key, body)
        retry = asyncio.create_task(api.post("/messages", json=body, headers={KEY: key}))
        await asyncio.sleep(0.5)
        assert not retry.done()  # it waits on the first's row in the unique index
        await first.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == key)
            .values(
                status_code=202,
                headers=[["content-type", "application/json"], ["location", "/tasks/t-1"]],
                body=b'{"task_id":"t-1"}',
                task_id="t-1",
            )
        )
        await first.commit()
        response = await retry
    assert response.status_code == 202 and response.json() == {"task_id": "t-1"}
    assert response.headers["location"] == "/tasks/t-1" and response.headers[REPLAYED] == "true"
    assert await posts_to(db, tg_id) == []


async def test_a_request_in_flight_too_long_is_409(
    api: httpx.AsyncClient,
    db_engine: AsyncEngine,
    db: AsyncSession,
    service_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "CLAIM_WAIT", "300ms")
    tg_id = await bound_channel(api, db, service_env)
    key, body = new_key(), {"channel_id": tg_id, "message": "hi"}
    async with db_engine.connect() as first:
        await hold_claim(first, key, body)
        response = await api.post("/messages", json=body, headers={KEY: key})
        await first.rollback()
    assert response.status_code == 409
    assert response.json() == {"message": service.IN_PROGRESS}
    # The first never committed: the key is free, and the retry runs.
    retried = await api.post("/messages", json=body, headers={KEY: key})
    assert retried.status_code == 202 and REPLAYED.lower() not in retried.headers
    assert len(await posts_to(db, tg_id)) == 1


async def test_a_key_is_per_route(
    api: httpx.AsyncClient, db: AsyncSession, service_env: dict[str, str]
) -> None:
    bot = await insert_bot(db, settings_from(service_env))
    tg_id, key = secrets.randbelow(10**9) + 10**9, new_key()
    bound = await api.post(
        "/channels/", json={"channel": tg_id, "bot_id": bot.id}, headers={KEY: key}
    )
    posted = await post(api, tg_id, key)
    assert bound.status_code == posted.status_code == 202
    assert REPLAYED.lower() not in posted.headers
    assert bound.json()["task_id"] != posted.json()["task_id"]
    assert len(await posts_to(db, tg_id)) == 1


async def test_bind_is_replayed_with_its_task(
    api: httpx.AsyncClient, db: AsyncSession, service_env: dict[str, str]
) -> None:
    """Without a key, binding a channel again re-runs the resolution under a new task;
    with the same key the retry names the first task and changes nothing."""
    bot = await insert_bot(db, settings_from(service_env))
    body, key = {"channel": f"@idem_{secrets.token_hex(4)}", "bot_id": bot.id}, new_key()
    first = await api.post("/channels/", json=body, headers={KEY: key})
    again = await api.post("/channels/", json=body, headers={KEY: key})
    assert first.status_code == again.status_code == 202 and again.json() == first.json()
    assert again.headers[REPLAYED] == "true"
    (binding,) = (
        await db.execute(
            select(Binding)
            .join(Channel, Channel.id == Binding.channel_id)
            .where(Channel.username == body["channel"].lstrip("@"))
        )
    ).scalars()
    assert binding.task_id == first.json()["task_id"]
    other = await api.post("/channels/", json={**body, "bot_id": None}, headers={KEY: key})
    assert other.status_code == 422


async def test_a_replay_honours_the_retry_s_prefer_wait(
    api: httpx.AsyncClient, db: AsyncSession, service_env: dict[str, str]
) -> None:
    tg_id = await bound_channel(api, db, service_env)
    key = new_key()
    task_id = (await post(api, tg_id, key)).json()["task_id"]
    answer = {"post_id": 1, "channel_id": tg_id, "message_id": 7, "link": None}
    backend = make_celery(settings_from(service_env)).backend
    backend.store_result(task_id, {"status_code": 200, "body": answer}, "SUCCESS")
    response = await api.post(
        "/messages",
        json={"channel_id": tg_id, "message": "hi"},
        headers={KEY: key, "Prefer": "wait=5"},
    )
    assert response.status_code == 200 and response.json() == answer
    assert response.headers[REPLAYED] == "true"
    assert response.headers["location"] == f"/tasks/{task_id}"


async def test_a_refusal_is_not_kept(
    api: httpx.AsyncClient, db: AsyncSession, service_env: dict[str, str]
) -> None:
    """A refused request recorded nothing: its retry with the key runs again."""
    bot = await insert_bot(db, settings_from(service_env))
    tg_id, key = secrets.randbelow(10**9) + 10**9, new_key()
    assert (await post(api, tg_id, key)).status_code == 404  # not bound yet
    await api.post("/channels/", json={"channel": tg_id, "bot_id": bot.id})
    retried = await post(api, tg_id, key)
    assert retried.status_code == 202 and REPLAYED.lower() not in retried.headers


async def test_a_queue_refusal_forgets_the_key(
    api: httpx.AsyncClient, db: AsyncSession, service_env: dict[str, str]
) -> None:
    """Told 503 "not scheduled" (the post failed), the caller retries with the same key
    once the queue is back: the retry posts, it does not replay a 202."""
    tg_id, key = await bound_channel(api, db, service_env), new_key()
    down = settings_from({**service_env, "BOTMGR_REDIS_URL": "redis://127.0.0.1:1/0"})
    app = create_app(down)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        auth = (down.auth_username, down.auth_password.get_secret_value())
        async with httpx.AsyncClient(transport=transport, base_url="http://t", auth=auth) as client:
            assert (await post(client, tg_id, key)).status_code == 503
    retried = await post(api, tg_id, key)
    assert retried.status_code == 202 and REPLAYED.lower() not in retried.headers
    assert sorted(p.status.value for p in await posts_to(db, tg_id)) == ["failed", "queued"]


async def test_expired_keys_claim_afresh_and_are_purged(
    api: httpx.AsyncClient, db: AsyncSession, db_engine: AsyncEngine, service_env: dict[str, str]
) -> None:
    tg_id, key = await bound_channel(api, db, service_env), new_key()
    first = await post(api, tg_id, key)
    expired = {"expires_at": func.now() - timedelta(seconds=1)}
    await db.execute(update(IdempotencyKey).where(IdempotencyKey.key == key).values(expired))
    await db.commit()
    after_ttl = await post(api, tg_id, key)
    assert after_ttl.status_code == 202 and REPLAYED.lower() not in after_ttl.headers
    assert after_ttl.json() != first.json() and len(await posts_to(db, tg_id)) == 2

    stale = [new_key() for _ in range(3)]
    async with db_engine.begin() as conn:
        for old in stale:
            await hold_claim(conn, old, {})
        await conn.execute(
            update(IdempotencyKey).where(IdempotencyKey.key.in_(stale)).values(expired)
        )
    async with AsyncSession(db_engine) as session:
        assert await service.purge_expired(session) >= len(stale)
        await session.commit()
    left = await db.execute(select(IdempotencyKey.key).where(IdempotencyKey.key.in_([*stale, key])))
    assert list(left.scalars()) == [key]  # the live one stays


async def test_a_claim_purges_expired_keys(
    api: httpx.AsyncClient, db: AsyncSession, db_engine: AsyncEngine, service_env: dict[str, str]
) -> None:
    stale = new_key()
    async with db_engine.begin() as conn:
        await hold_claim(conn, stale, {})
        await conn.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == stale)
            .values(expires_at=func.now() - timedelta(hours=1))
        )
    tg_id = await bound_channel(api, db, service_env)
    assert (await post(api, tg_id, new_key())).status_code == 202
    gone = await db.execute(select(IdempotencyKey).where(IdempotencyKey.key == stale))
    assert gone.first() is None


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "caf\xe9", "del\x7f"])
async def test_a_bad_key_is_422(
    api: httpx.AsyncClient, db: AsyncSession, service_env: dict[str, str], key: str
) -> None:
    tg_id = await bound_channel(api, db, service_env)
    response = await post(api, tg_id, key.encode("latin-1"))  # as the bytes arrive
    assert response.status_code == 422
    assert response.json() == {"message": BAD_KEY}
    assert await posts_to(db, tg_id) == []


async def test_the_longest_key_is_taken(
    api: httpx.AsyncClient, db: AsyncSession, service_env: dict[str, str]
) -> None:
    tg_id = await bound_channel(api, db, service_env)
    key = "k" * 254 + "~"
    assert (await post(api, tg_id, key)).status_code == 202
    assert (await post(api, tg_id, key)).headers[REPLAYED] == "true"


class Counted(BaseModel):
    runs: int


async def test_a_route_answering_a_model_opts_in_with_one_line(
    service_env: dict[str, str],
) -> None:
    runs = 0
    router = APIRouter(dependencies=[Depends(require_operator)])

    @router.post("/counted", status_code=201)
    @idempotent
    async def count(unit: UnitDep) -> Counted:
        nonlocal runs
        runs += 1
        return Counted(runs=runs)

    settings = settings_from(service_env)
    app = create_app(settings)
    app.include_router(router)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        auth = (settings.auth_username, settings.auth_password.get_secret_value())
        async with httpx.AsyncClient(transport=transport, base_url="http://t", auth=auth) as client:
            key = new_key()
            first = await client.post("/counted", headers={KEY: key})
            again = await client.post("/counted", headers={KEY: key})
            unkeyed = await client.post("/counted")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() == {"runs": 1} and again.headers[REPLAYED] == "true"
    assert unkeyed.json() == {"runs": 2}
