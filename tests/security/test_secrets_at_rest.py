"""After a full run (register, bind, post) through a real API process and a real worker,
no bot token, Telethon session or auth key is stored or logged in clear: the database
(every column of every row), the Redis keys of the run and the logs of api, worker and
tgemu are searched for each secret in the forms it could leak in."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis
from telethon.sessions import StringSession

from botmgr.security import Cipher
from botmgr.worker.app import make_celery
from tests.harness.env import drop_redis_prefix, make_env, settings_from
from tests.harness.flows import bind_channel, ensure_active, post, register_bot
from tests.harness.processes import ApiProcess, WorkerProcess
from tests.harness.tgemu import TgEmu, spawn_tgemu

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[TgEmu]:
    with spawn_tgemu(tmp_path / "tgemu", "--log-level", "debug") as running:
        yield running


def forms(secret: str | bytes) -> set[str]:
    """The ways a secret could be written: as is, hex, base64 (standard and urlsafe)."""
    raw = secret.encode() if isinstance(secret, str) else secret
    found = {
        raw.hex(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
    if isinstance(secret, str):
        found.add(secret)
    return {f for f in found if len(f) >= 16}


async def database_dump(dsn: str) -> str:
    conn = await asyncpg.connect(dsn.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        rows = []
        for table in tables:
            name = table["tablename"]
            rows += [r[0] for r in await conn.fetch(f'SELECT row_to_json(t)::text FROM "{name}" t')]
        return "\n".join(rows)
    finally:
        await conn.close()


def redis_dump(url: str, prefix: str) -> str:
    client = redis.Redis.from_url(url)
    try:
        parts = []
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            kind = client.type(key).decode()
            value: Any = {
                "string": client.get,
                "list": lambda k: client.lrange(k, 0, -1),
                "hash": client.hgetall,
                "set": client.smembers,
                "zset": lambda k: client.zrange(k, 0, -1),
            }.get(kind, str)(key)
            parts.append(f"{key!r} {value!r}")
        return "\n".join(parts)
    finally:
        client.close()


async def test_no_secret_in_database_redis_or_logs(
    emu: TgEmu, private_db: str, tmp_path: Path
) -> None:
    env = make_env(private_db, emu)
    # The worker at DEBUG level: where a careless log line would show a secret.
    worker = WorkerProcess(env, tmp_path / "worker.log", concurrency=2, loglevel="DEBUG")
    api = ApiProcess(env, tmp_path / "api.log", loglevel="DEBUG")
    bot = emu.create_bot()
    channel = emu.create_channel("Secrets", username=emu.unique("secrets"))
    try:
        worker.wait_ready()
        api.wait_ready()
        async with httpx.AsyncClient(base_url=api.url, auth=api.auth, timeout=60) as client:
            bot_db_id = await register_bot(client, bot, alias="s")
            shown = (await client.get(f"/bots/{bot_db_id}")).json()
            assert bot["token"] not in str(shown)
            emu.grant_admin(channel["id"], bot["id"])
            bound = await bind_channel(client, channel)
            await ensure_active(make_celery(settings_from(env)), bound)
            await post(client, channel["id"], "*hi*", wait=True)
        assert len(emu.messages(channel["id"])) == 1
    finally:
        api.stop()
        worker.stop()

    conn = await asyncpg.connect(private_db.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        stored = await conn.fetchval("SELECT session_encrypted FROM bots WHERE id=$1", bot_db_id)
    finally:
        await conn.close()
    assert stored, "the run kept the bot's session"
    session = Cipher.from_settings(settings_from(env)).decrypt(stored)
    auth_key = StringSession(session).auth_key
    assert auth_key is not None and auth_key.key is not None
    secrets_ = {
        "bot token": forms(bot["token"]) | {bot["token"].split(":", 1)[1]},
        "session": forms(session),
        "auth key": forms(auth_key.key),
        "secret key": forms(env["BOTMGR_SECRET_KEY"]),
        "operator password": forms(env["BOTMGR_AUTH_PASSWORD"]),
    }
    await asyncio.sleep(0.2)  # let tgemu flush its log
    places = {
        "database": await database_dump(private_db),
        "redis": redis_dump(env["BOTMGR_REDIS_URL"], env["BOTMGR_REDIS_PREFIX"]),
        "api log": api.log(),
        "worker log": worker.log(),
        "tgemu log": (tmp_path / "tgemu" / "stderr.log").read_text(errors="replace")
        + "\n".join(emu.output),
    }
    assert all(len(text) > 100 for text in places.values()), {k: len(v) for k, v in places.items()}
    # The search itself works: it finds the token where it is meant to be, in tgemu's answer.
    assert any(v in str(emu.request("GET", f"/bots/{bot['id']}")) for v in secrets_["bot token"])
    leaks = [
        (what, where)
        for what, variants in secrets_.items()
        for where, text in places.items()
        if any(v in text for v in variants)
    ]
    assert leaks == []
    drop_redis_prefix(env["BOTMGR_REDIS_PREFIX"])
