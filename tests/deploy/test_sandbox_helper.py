"""botmgr.sandbox: the database step of Procfile.sandbox and the curl examples' exports."""

from __future__ import annotations

import asyncio
import secrets
import shlex
import subprocess
from pathlib import Path

import asyncpg
import pytest

from botmgr.sandbox import create_database, shell_exports, wait_for_services
from botmgr.sandbox.helpers import default_seed_path
from tests.harness.env import PG_ADMIN_DSN, REDIS_URL
from tests.harness.processes import free_port

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


def test_wait_names_the_server_that_does_not_answer() -> None:
    down = free_port()
    database = PG.replace("postgresql://", "postgresql+asyncpg://", 1)
    with pytest.raises(SystemExit, match=rf"Redis at redis://127.0.0.1:{down}/0 did not answer"):
        wait_for_services(database, f"redis://127.0.0.1:{down}/0", timeout=0.5)
    gone = f"postgresql+asyncpg://postgres:secret@127.0.0.1:{down}/x"
    with pytest.raises(
        SystemExit, match=rf"PostgreSQL at .*127.0.0.1:{down}/x did not answer"
    ) as e:
        wait_for_services(gone, REDIS_URL, timeout=0.5)
    assert "secret" not in str(e.value)
    wait_for_services(database, REDIS_URL, timeout=5)  # both answer: returns at once


def test_the_seed_is_found_where_each_way_of_running_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BOTMGR_TG_PUBLIC_KEY", raising=False)
    assert default_seed_path(tmp_path) == tmp_path / "var/sandbox/tgemu/seed.json"
    (tmp_path / "var/tgemu").mkdir(parents=True)
    (tmp_path / "var/tgemu/seed.json").write_text("{}")  # compose's tgemu
    assert default_seed_path(tmp_path) == tmp_path / "var/tgemu/seed.json"
    monkeypatch.setenv("BOTMGR_TG_PUBLIC_KEY", "/elsewhere/keys/public.pem")
    assert default_seed_path(tmp_path) == Path("/elsewhere/keys/seed.json")
