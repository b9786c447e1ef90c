"""botmgr.sandbox: the database step of Procfile.sandbox and the curl examples' exports."""

from __future__ import annotations

import asyncio
import secrets
import shlex
import subprocess

import asyncpg

from botmgr.sandbox import create_database, shell_exports
from tests.harness.env import PG_ADMIN_DSN

PG = PG_ADMIN_DSN
SEED = {
    "bot": {"id": 7000000001, "username": "tgemu_demo_bot", "token": "7000000001:AAx'y"},
    "public_channel": {
        "id": 2000000001,
        "bot_api_id": -1002000000001,
        "username": "tgemu_demo_channel",
    },
    "private_channel": {"id": 2000000002, "bot_api_id": -1002000000002, "username": None},
}


def test_exports_survive_the_shell() -> None:
    script = (
        shell_exports(SEED) + 'printf "%s|%s|%s" "$BOT_TOKEN" "$PUBLIC_CHANNEL" '
        '"$PRIVATE_CHANNEL_ID"'
    )
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout == "7000000001:AAx'y|tgemu_demo_channel|-1002000000002"
    assert shlex.quote("7000000001:AAx'y") in shell_exports(SEED)


def test_createdb_creates_once() -> None:
    name = f"botmgr_sandbox_test_{secrets.token_hex(4)}"
    base = PG.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)

    async def scenario() -> tuple[bool, bool]:
        try:
            return (
                await create_database(f"{base}/{name}"),
                await create_database(f"{base}/{name}"),
            )
        finally:
            conn = await asyncpg.connect(PG)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            finally:
                await conn.close()

    assert asyncio.run(scenario()) == (True, False)
