"""``botmgr doctor`` against tgemu over MTProto, as an operator runs it: every step passes
for a good bot and channel (and the test post arrives), also for a bot whose home DC is
not the one a new client reaches first; the failing step is named for a revoked token, a
missing right and an unknown channel. The token goes in on stdin."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.harness.env import ROOT
from tests.harness.processes import botmgr_argv
from tests.harness.tgemu import TgEmu

pytestmark = pytest.mark.timeout(120)


def doctor(env: dict[str, str], token: str, *args: str) -> tuple[int, list[str]]:
    done = subprocess.run(
        botmgr_argv("--loglevel", "WARNING", "doctor", "--token", "-", *args),
        input=token + "\n",
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert token not in done.stdout + done.stderr  # never echoed
    return done.returncode, done.stdout.splitlines()


@pytest.mark.parametrize("dc_id", [4, 2])  # a bot at home off the DC clients reach first
def test_every_step_passes_and_the_test_post_arrives(
    tg_env: dict[str, str], tgemu: TgEmu, dc_id: int
) -> None:
    bot = tgemu.create_bot(dc_id=dc_id)
    name = tgemu.unique("doc")
    channel = tgemu.create_channel("Doctor", username=name)
    tgemu.grant_admin(channel["id"], bot["id"])
    code, lines = doctor(tg_env, bot["token"], "--channel", f"@{name}", "--post")
    assert code == 0, lines
    assert len(lines) == 6 and all(line.startswith("ok ") for line in lines), lines
    assert [m["text"] for m in tgemu.messages(channel["id"])] == ["botmgr doctor: test post"]


def test_the_failing_step_is_named(tg_env: dict[str, str], tgemu: TgEmu) -> None:
    bot = tgemu.create_bot()
    name = tgemu.unique("doc")
    channel = tgemu.create_channel("Doctor", username=name)
    code, lines = doctor(tg_env, bot["token"], "--channel", f"@{name}")
    assert code == 1 and lines[-1].startswith("FAIL the bot may post in the channel"), lines
    code, lines = doctor(tg_env, bot["token"], "--channel", f"@{tgemu.unique('none')}")
    assert code == 1 and lines[-1].startswith("FAIL the channel resolves"), lines
    old = bot["token"]
    tgemu.revoke_token(bot["id"])
    code, lines = doctor(tg_env, old, "--channel", f"@{name}")
    assert code == 1 and len(lines) == 2, lines
    assert lines[-1].startswith("FAIL Telegram accepts api_id/api_hash and the token"), lines
    assert channel["id"] and tgemu.messages(channel["id"]) == []
