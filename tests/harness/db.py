"""Databases of a test's own on the shared PostgreSQL, and rows written directly.

A database per run (or per module) keeps what one test leaves behind, such as active bots,
from steering another: arbitration picks among every active bot it finds.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.models import Bot, BotStatus
from botmgr.security import Cipher, token_tail
from botmgr.settings import Settings
from tests.harness.env import PG_ADMIN_DSN, ROOT, pg_url
from tests.harness.processes import botmgr_argv


async def admin_sql(sql: str, dsn: str = PG_ADMIN_DSN) -> None:
    """Run one statement on the maintenance database (CREATE / DROP DATABASE)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def drop_database(name: str) -> None:
    """Drop ``name`` even while connections remain (a killed process may hold one)."""
    asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def migrate(env: dict[str, str]) -> None:
    """``botmgr migrate`` with ``env`` (at least BOTMGR_DATABASE_URL) on top of ours."""
    subprocess.run(
        botmgr_argv("--loglevel", "WARNING", "migrate"),
        env={**os.environ, **env},
        cwd=ROOT,
        check=True,
        timeout=120,
    )


@contextmanager
def fresh_database(prefix: str = "botmgr_private") -> Iterator[str]:
    """A new database migrated by ``botmgr migrate`` (``postgresql+asyncpg://`` URL), dropped
    afterwards: tests that leave active bots behind must not hand them to other tests."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    url = pg_url(PG_ADMIN_DSN, name)
    try:
        migrate({"BOTMGR_DATABASE_URL": url, "BOTMGR_DEV": "1"})
        yield url
    finally:
        drop_database(name)


async def insert_bot(
    session: AsyncSession,
    settings: Settings,
    *,
    tg_id: int | None = None,
    username: str | None = None,
    status: BotStatus = BotStatus.active,
) -> Bot:
    """A bot row written directly (no Telegram): for tests of rules that never call it."""
    tg_id = tg_id or secrets.randbelow(10**9) + 10**9
    cipher = Cipher.from_settings(settings)
    token = f"{tg_id}:{secrets.token_urlsafe(27)}"  # stored as the service stores tokens
    bot = Bot(
        tg_id=tg_id,
        alias="fixture",
        description="",
        name=username or f"b{tg_id}_bot",
        username=username or f"b{tg_id}_bot",
        first_name="Fixture",
        token_encrypted=cipher.encrypt(token),
        token_tail=token_tail(token),
        status=status,
    )
    session.add(bot)
    await session.commit()
    return bot
