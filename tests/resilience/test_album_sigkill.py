"""A worker SIGKILLed in the middle of sending a 3-item album (its files being uploaded,
every tgemu call slowed down): another worker takes the post over and the album is in the
channel exactly once — three messages, one grouped_id, each random_id once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from botmgr.worker.app import make_celery
from tests.harness.client import api_client
from tests.harness.env import SHORT_WAITS, drop_redis_prefix, make_env, settings_from
from tests.harness.flows import delivered, fleet
from tests.harness.images import png
from tests.harness.processes import BeatProcess, WorkerProcess, running
from tests.harness.tgemu import TgEmu, spawn_tgemu

pytestmark = pytest.mark.timeout(180)
SHORT = SHORT_WAITS
UPLOADS = ("upload.SaveFilePartRequest", "upload.saveFilePart")


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[TgEmu]:
    # Every answer 400 ms late: an album (3 uploads, then sendMultiMedia) takes seconds,
    # long enough to kill the worker inside it.
    with spawn_tgemu(tmp_path / "tgemu", "--no-rate-limits", "--latency-ms", "400") as running_:
        yield running_


def _uploads(emu: TgEmu) -> int:
    calls = emu.metrics()["calls"]
    return sum(n for name, n in calls.items() if "saveFilePart" in name or name in UPLOADS)


async def test_an_album_survives_a_worker_killed_mid_send(
    emu: TgEmu, private_db: str, tmp_path: Path
) -> None:
    env = make_env(private_db, emu, **SHORT)
    settings = settings_from(env)
    celery = make_celery(settings)
    try:
        with running(BeatProcess(env, tmp_path / "beat.log")):
            with running(WorkerProcess(env, tmp_path / "w1.log", concurrency=2)) as first:
                async with api_client(settings) as api:
                    [(_, channel)] = await fleet(api, emu, celery, bots=1, channels_per_bot=1)
                    ids = []
                    for index in range(3):
                        upload = await api.post(
                            "/media", files={"file": (f"{index}.png", png(30 + index, 20))}
                        )
                        ids.append(upload.json()["media_id"])
                    before = _uploads(emu)
                    accepted = await api.post(
                        "/messages",
                        json={"channel_id": channel["id"], "message": "album", "media": ids},
                    )
                    assert accepted.status_code == 202, accepted.text
                    post_id = accepted.json()["post_id"]
                    deadline = time.monotonic() + 30
                    while _uploads(emu) == before:  # the send is under way
                        assert time.monotonic() < deadline, emu.metrics()
                        await asyncio.sleep(0.05)
                    first.kill()
                    killed_with = len(emu.messages(channel["id"]))
            with running(WorkerProcess(env, tmp_path / "w2.log", concurrency=2)):
                async with api_client(settings) as api:
                    deadline = time.monotonic() + 60
                    while (got := (await api.get(f"/messages/{post_id}")).json())["status"] == (
                        "queued"
                    ):
                        assert time.monotonic() < deadline, got
                        await asyncio.sleep(0.3)
        assert got["status"] == "sent", got
        messages = emu.messages(channel["id"])
        assert len(messages) == 3, (killed_with, messages)
        assert len({m["media"]["grouped_id"] for m in messages}) == 1
        assert sorted(delivered(emu, [channel]).values()) == [1, 1, 1]
        assert [m["id"] for m in messages] == got["message_ids"] or got["message_ids"] == []
    finally:
        drop_redis_prefix(env["BOTMGR_REDIS_PREFIX"])
