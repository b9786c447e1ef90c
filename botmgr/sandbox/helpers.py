"""The steps of Procfile.sandbox's lines and the curl examples' exports: waiting for the
stack's PostgreSQL and Redis, creating its database, and the demo world as shell exports
(``botmgr sandbox env`` prints the demo bot's token: it opens only the emulator, and the
operator asked for it. It is never logged)."""

from __future__ import annotations

import asyncio
import os
import shlex
import time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

WAIT_SECONDS = 60.0  # how long a stack's process waits for its PostgreSQL and Redis
SANDBOX_DIR = Path("var") / "sandbox"  # `botmgr sandbox`'s data, under the project root


async def _connect_maintenance(url: str) -> Any:
    import asyncpg

    target = make_url(url)
    return await asyncpg.connect(
        host=target.host or "127.0.0.1",
        port=target.port or 5432,
        user=target.username,
        password=target.password,
        database="postgres",
    )


async def _when_up(url: str, seconds: float) -> Any:
    """A connection to the maintenance database of ``url``'s server, retried while the
    server does not answer (still starting) for up to ``seconds``."""
    import asyncpg

    deadline = time.monotonic() + seconds
    while True:
        try:
            return await _connect_maintenance(url)
        # Refused (not listening yet), or "the database system is starting up".
        except (OSError, TimeoutError, asyncpg.CannotConnectNowError) as exc:
            last = exc
        if time.monotonic() > deadline:
            where = make_url(url).render_as_string(hide_password=True)
            raise SystemExit(f"PostgreSQL at {where} did not answer in {seconds:g} s: {last}")
        await asyncio.sleep(0.2)


async def create_database(url: str, wait: float = 0) -> bool:
    """Create the database named in ``url`` (an SQLAlchemy URL) if it does not exist.
    Connects to the ``postgres`` maintenance database as the same user, waiting up to
    ``wait`` seconds for the server to answer. True if created."""
    name = make_url(url).database
    if not name:
        raise ValueError("the database URL names no database")
    conn = await _when_up(url, wait)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        quoted = '"' + name.replace('"', '""') + '"'
        await conn.execute(f"CREATE DATABASE {quoted}")
        return True
    finally:
        await conn.close()


def wait_for_services(database_url: str, redis_url: str, timeout: float = WAIT_SECONDS) -> None:
    """Return once PostgreSQL and Redis both answer; SystemExit naming the one that did
    not within ``timeout`` seconds (a stack's processes start together with them)."""
    import redis

    async def postgres() -> None:
        await (await _when_up(database_url, timeout)).close()

    asyncio.run(postgres())
    client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                client.ping()
                return
            except redis.RedisError as exc:
                if time.monotonic() > deadline:
                    where = make_url(redis_url).render_as_string(hide_password=True)
                    message = f"Redis at {where} did not answer in {timeout:g} s: {exc}"
                    raise SystemExit(message) from None
            time.sleep(0.2)
    finally:
        client.close()


def shell_exports(seed: dict[str, Any]) -> str:
    """``export NAME=value`` lines naming the demo world's bot and channels."""
    values = {
        "BOT_TOKEN": seed["bot"]["token"],
        "BOT_ID": seed["bot"]["id"],
        "BOT_USERNAME": seed["bot"]["username"],
        "PUBLIC_CHANNEL": seed["public_channel"]["username"],
        "PUBLIC_CHANNEL_ID": seed["public_channel"]["bot_api_id"],
        "PRIVATE_CHANNEL_ID": seed["private_channel"]["bot_api_id"],
    }
    return "".join(f"export {k}={shlex.quote(str(v))}\n" for k, v in values.items())


def default_seed_path(root: Path) -> Path:
    """tgemu's seed file: next to BOTMGR_TG_PUBLIC_KEY when that is set, else where
    ``botmgr sandbox`` keeps it under ``root``, else where compose's tgemu writes it."""
    key = os.environ.get("BOTMGR_TG_PUBLIC_KEY")
    if key:
        return Path(key).parent / "seed.json"
    ours, compose = root / SANDBOX_DIR / "tgemu" / "seed.json", root / "var/tgemu/seed.json"
    return compose if compose.exists() and not ours.exists() else ours
