"""A restarted worker reaches the channels its bots already know without resolving any
username again (the access hashes are stored per bot, bot_channel_access): tgemu's
/metrics count no contacts.resolveUsername after the restart, while posts, a rights
check and a stats collection run for the known channel."""

from __future__ import annotations

from pathlib import Path

import pytest

from botmgr.tasks.names import CHECK_BINDING, COLLECT_STATS
from botmgr.worker.app import make_celery
from tests.harness.client import api_client
from tests.harness.env import drop_redis_prefix, make_env, settings_from
from tests.harness.flows import fleet, post, run_task
from tests.harness.processes import WorkerProcess, running
from tests.harness.tgemu import TgEmu

pytestmark = pytest.mark.timeout(150)


def resolves(emu: TgEmu) -> int:
    return int(emu.metrics()["calls"].get("contacts.resolveUsername", 0))


async def test_a_restarted_worker_resolves_no_known_channel(
    tgemu: TgEmu, private_db: str, tmp_path: Path
) -> None:
    env = make_env(private_db, tgemu)  # its own queue: the session's worker stays out
    settings = settings_from(env)
    celery = make_celery(settings)
    try:
        async with api_client(settings) as api:
            with running(WorkerProcess(env, tmp_path / "first.log", concurrency=2)):
                [(_, channel)] = await fleet(api, tgemu, celery, bots=1, channels_per_bot=1)
                await post(api, channel["id"], "before the restart", wait=True)
            before = resolves(tgemu)
            assert before >= 1  # the bind resolved the public channel by its username
            with running(WorkerProcess(env, tmp_path / "second.log", concurrency=2)):
                sent = await post(api, channel["id"], "after the restart", wait=True)
                checked = await run_task(celery, CHECK_BINDING, channel["binding_id"])
                collected = await run_task(celery, COLLECT_STATS)
        assert sent["message_id"] and checked["body"]["status"] == "active"
        assert collected["status_code"] == 200 and not collected["body"]["failed"]
        assert resolves(tgemu) == before
        texts = [m["text"] for m in tgemu.messages(channel["id"])]
        assert texts == ["before the restart", "after the restart"]
    finally:
        drop_redis_prefix(env["BOTMGR_REDIS_PREFIX"])
