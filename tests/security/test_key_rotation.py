"""``botmgr rotate-key`` on a database of 1,000 bots while the service keeps working.

A deployment runs under key A (real API and worker processes, tgemu): its bots are
registered, bound and post, so their tokens and Telethon sessions are stored under A;
997 more bots are written directly under A. Then every process gets B as current key
and A as old; ``botmgr rotate-key`` runs as a subprocess while posts, rights checks and
a registration go through; one row is held by a "writer" so the command must come back
for it. Afterwards every token and session opens under B alone, and the service works
with the old key removed."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import insert

from botmgr.db import make_engine
from botmgr.models import Bot, BotStatus
from botmgr.secret_keys import generate_key
from botmgr.security import Cipher, token_tail
from botmgr.worker.app import make_celery
from tests.harness.env import ROOT, drop_redis_prefix, make_env, settings_from
from tests.harness.flows import WAIT, bound_channel, post, register_bot
from tests.harness.processes import ApiProcess, WorkerProcess, botmgr_argv, running
from tests.harness.tgemu import TgEmu

pytestmark = pytest.mark.timeout(120)

FLEET = 1000
LIVE = 3  # bots that really post (tgemu's); the rest are rows only


@pytest.fixture
def keys() -> Iterator[tuple[str, str]]:
    yield generate_key(), generate_key()


def pg(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def seed(database_url: str, cipher: Cipher, count: int) -> None:
    """``count`` bots written in one statement, token and session encrypted as stored."""
    rows = []
    for _ in range(count):
        tg_id = secrets.randbelow(10**9) + 10**9
        token = f"{tg_id}:{secrets.token_urlsafe(27)}"
        rows.append(
            {
                "tg_id": tg_id,
                "alias": "seeded",
                "description": "",
                "name": f"s{tg_id}_bot",
                "username": f"s{tg_id}_bot",
                "first_name": "Seeded",
                "token_encrypted": cipher.encrypt(token),
                "token_tail": token_tail(token),
                # The size of a Telethon StringSession.
                "session_encrypted": cipher.encrypt("1" + secrets.token_urlsafe(260)),
                "status": BotStatus.active,
            }
        )
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(Bot), rows)
    finally:
        await engine.dispose()


async def stored_secrets(database_url: str) -> list[tuple[int, str, str | None]]:
    conn = await asyncpg.connect(pg(database_url))
    try:
        rows = await conn.fetch("SELECT id, token_encrypted, session_encrypted FROM bots")
    finally:
        await conn.close()
    return [(r["id"], r["token_encrypted"], r["session_encrypted"]) for r in rows]


def rotate_key(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        botmgr_argv("rotate-key"),
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def works(api: httpx.AsyncClient, channel: dict[str, Any], text: str) -> None:
    """A post goes out and a rights check answers "active": both need the bot's token
    and session, decrypted in the worker."""
    sent = await post(api, channel["id"], text, wait=True)
    assert sent["message_id"], sent
    checked = await api.post(f"/channels/{channel['id']}/check", headers=WAIT)
    assert checked.status_code == 200 and checked.json()["status"] == "active", checked.text


async def test_rotate_key_reencrypts_1000_bots_while_the_service_works(
    tgemu: TgEmu, private_db: str, tmp_path: Path, keys: tuple[str, str]
) -> None:
    started = time.monotonic()
    key_a, key_b = keys
    env_a = make_env(private_db, tgemu, BOTMGR_SECRET_KEY=key_a)
    env_b = {**env_a, "BOTMGR_SECRET_KEY": key_b, "BOTMGR_SECRET_KEYS_OLD": key_a}
    env_c = {**env_a, "BOTMGR_SECRET_KEY": key_b}  # the old key removed
    try:
        channels = await under_key_a(env_a, env_b, tgemu, tmp_path)
        await seed(private_db, Cipher(key_a.encode()), FLEET - LIVE)
        before = await stored_secrets(private_db)
        assert len(before) == FLEET and sum(1 for r in before if r[2]) == FLEET
        only_a = Cipher(key_a.encode())
        assert all(only_a.is_current(t) and only_a.is_current(s or t) for _, t, s in before)

        new_bot = await rotate_under_load(env_b, private_db, tgemu, channels, tmp_path)

        only_b = Cipher(key_b.encode())
        after = await stored_secrets(private_db)
        assert len(after) == FLEET + 1  # the bot registered during the rotation
        sessions = 0
        for bot_id, token, session in after:
            assert only_b.decrypt(token).split(":")[0].isdigit(), bot_id
            if session is not None:
                assert only_b.decrypt(session), bot_id
                sessions += 1
            with pytest.raises(InvalidToken):
                Fernet(key_a.encode()).decrypt(token.encode())
        assert sessions >= FLEET  # every seeded and live bot's (the new one's too, if kept)
        # The same plaintexts as before: re-encrypted, not replaced.
        old_cipher = Cipher(key_a.encode())
        by_id = {bot_id: token for bot_id, token, _ in after}
        for bot_id, token, _ in before[:50]:
            assert only_b.decrypt(by_id[bot_id]) == old_cipher.decrypt(token)

        await with_old_key_removed(env_c, tgemu, channels, new_bot, tmp_path)
    finally:
        drop_redis_prefix(env_a["BOTMGR_REDIS_PREFIX"])
    assert time.monotonic() - started < 90


async def under_key_a(
    env_a: dict[str, str], env_b: dict[str, str], emu: TgEmu, tmp_path: Path
) -> list[dict[str, Any]]:
    """The deployment as it was: LIVE bots registered, bound and posting under key A.
    While it runs, rotate-key with the new key refuses (they still encrypt under A)."""
    bots = [emu.create_bot() for _ in range(LIVE)]
    with (
        running(WorkerProcess(env_a, tmp_path / "worker-a.log", concurrency=4)),
        running(ApiProcess(env_a, tmp_path / "api-a.log")) as api,
    ):
        celery = make_celery(settings_from(env_a))
        async with httpx.AsyncClient(base_url=api.url, auth=api.auth, timeout=60) as client:
            channels = []
            for bot in bots:
                bot_id = await register_bot(client, bot, alias="live")
                channels.append(await bound_channel(client, emu, celery, bot, bot_id))
            for channel in channels:
                await works(client, channel, "under key A")
        refused = rotate_key(env_b)
        assert refused.returncode != 0, refused.stdout
        assert "refused" in refused.stderr and "another key" in refused.stderr, refused.stderr
        assert env_a["BOTMGR_SECRET_KEY"] not in refused.stdout + refused.stderr
    return channels


async def rotate_under_load(
    env_b: dict[str, str],
    database_url: str,
    emu: TgEmu,
    channels: list[dict[str, Any]],
    tmp_path: Path,
) -> dict[str, Any]:
    """New key current everywhere, old readable: the service works on A's data, and
    through the rotation. Returns the bot registered meanwhile."""
    held = await asyncpg.connect(pg(database_url))
    with (
        running(WorkerProcess(env_b, tmp_path / "worker-b.log", concurrency=4)),
        running(ApiProcess(env_b, tmp_path / "api-b.log")) as api,
    ):
        async with httpx.AsyncClient(base_url=api.url, auth=api.auth, timeout=60) as client:
            await works(client, channels[0], "under B, reading A")
            # A writer holds one seeded bot's row: the command must skip it and return.
            writer = held.transaction()
            await writer.start()
            locked = await held.fetchval(
                "SELECT id FROM bots WHERE alias = 'seeded' ORDER BY id LIMIT 1 FOR UPDATE"
            )
            command = await asyncio.create_subprocess_exec(
                *botmgr_argv("rotate-key", "--batch", "200"),
                env={**os.environ, **env_b},
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            assert command.stdout is not None
            lines: list[str] = []
            progress = asyncio.Event()

            async def read() -> None:
                assert command.stdout is not None
                async for raw in command.stdout:
                    lines.append(raw.decode().rstrip())
                    if "/1000 bots" in lines[-1]:
                        progress.set()

            reader = asyncio.create_task(read())
            await asyncio.wait_for(progress.wait(), 30)
            # Rotation under way (and it cannot finish while the row is held): the
            # service keeps posting, checking rights and registering bots.
            for round_ in range(2):
                for channel in channels:
                    await works(client, channel, f"during rotation {round_}")
            new_bot = emu.create_bot()
            new_bot["db_id"] = await register_bot(client, new_bot, alias="during")
            assert command.returncode is None, lines  # all of that was during the rotation
            await writer.commit()
            await held.close()
            stderr = await asyncio.wait_for(command.stderr.read(), 60)  # type: ignore[union-attr]
            assert await asyncio.wait_for(command.wait(), 60) == 0, (lines, stderr)
            await reader
            for channel in channels:
                await works(client, channel, "after rotation, old key still readable")
    done = lines[-1]
    assert done.startswith("rotate-key: done: "), lines
    assert f"{FLEET} bots" in done or f"{FLEET + 1} bots" in done, done
    assert "retried after a writer held them" in done and " 1 retried" in done, done
    assert "0 unreadable" in done and "0 secrets not under the current key" in done, done
    assert "2 running process(es) use it" in lines[0], lines  # the api and the worker
    assert locked is not None
    assert env_b["BOTMGR_SECRET_KEY"] not in "\n".join(lines) + stderr.decode()
    return new_bot


async def with_old_key_removed(
    env_c: dict[str, str],
    emu: TgEmu,
    channels: list[dict[str, Any]],
    new_bot: dict[str, Any],
    tmp_path: Path,
) -> None:
    """Only B configured: every bot still works, and a second rotation has nothing to do."""
    celery = make_celery(settings_from(env_c))
    with (
        running(WorkerProcess(env_c, tmp_path / "worker-c.log", concurrency=4)),
        running(ApiProcess(env_c, tmp_path / "api-c.log")) as api,
    ):
        async with httpx.AsyncClient(base_url=api.url, auth=api.auth, timeout=60) as client:
            for channel in channels:
                await works(client, channel, "old key removed")
            channel = await bound_channel(client, emu, celery, new_bot, new_bot["db_id"])
            await works(client, channel, "the bot registered during the rotation")
        again = rotate_key(env_c)
    assert again.returncode == 0, again.stderr
    assert " 0 secrets re-encrypted" in again.stdout, again.stdout
