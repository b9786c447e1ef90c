"""Schedules in Redis (redbeat) and a real ``botmgr beat`` process: the defaults appear
at start, survive a restart without losing an edit, and an edit made while beat runs
changes when the job runs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from celery import Celery
from redbeat import RedBeatSchedulerEntry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.models import Binding
from botmgr.tasks.names import CHECK_ACTIVE, COLLECT_STATS
from botmgr.worker import schedules
from botmgr.worker.app import make_celery
from tests.harness.env import ROOT, scoped_env, settings_from
from tests.harness.flows import bind_channel, register_bot
from tests.harness.processes import BeatProcess, botmgr_argv, running

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def own_env(service_db: str) -> Iterator[dict[str, str]]:
    with scoped_env(service_db, BOTMGR_TIMEZONE="Asia/Tokyo") as env:
        yield env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        botmgr_argv("schedules", *args),
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def by_name(app: Celery) -> dict[str, schedules.Schedule]:
    return {s.name: s for s in schedules.list_schedules(app)}


def test_defaults_survive_restart_without_resetting_edits(
    own_env: dict[str, str], tmp_path: Path
) -> None:
    app = make_celery(settings_from(own_env))
    assert schedules.list_schedules(app) == []
    with running(BeatProcess(own_env, tmp_path / "beat.log")):
        found = by_name(app)
    assert sorted(found) == sorted(schedules.DEFAULT_NAMES)
    assert found["check-active-bindings"].spec == "cron 0 * * * *"
    assert found["check-new-bindings"].task == "botmgr.checks.new"
    daily = found["collect-daily-stats"]
    assert (daily.spec, daily.task, daily.enabled) == ("cron 0 0 * * *", COLLECT_STATS, True)
    local = daily.next_run.astimezone(ZoneInfo("Asia/Tokyo"))  # type: ignore[union-attr]
    assert (local.hour, local.minute) == (0, 0)
    assert daily.last_run is None

    edited = schedules.set_schedule(app, "check-active-bindings", "cron 30 2 * * *")
    assert edited.spec == "cron 30 2 * * *"
    assert not schedules.set_enabled(app, "collect-daily-stats", False).enabled
    out = cli(own_env, "set", "check-new-bindings", "every", "90")
    assert out.returncode == 0 and "every 90" in out.stdout, out.stderr
    bad = cli(own_env, "set", "check-new-bindings", "61 * * * *")
    assert bad.returncode != 0 and "bad crontab" in bad.stderr
    assert cli(own_env, "disable", "no-such-job").returncode != 0

    with running(BeatProcess(own_env, tmp_path / "beat2.log")):
        after = by_name(app)
    assert after["check-active-bindings"].spec == "cron 30 2 * * *"
    assert after["check-new-bindings"].spec == "every 90"
    assert not after["collect-daily-stats"].enabled
    assert after["collect-daily-stats"].next_run is None
    listed = cli(own_env, "list").stdout
    assert "cron 30 2 * * *" in listed and "off" in listed


@pytest.mark.usefixtures("worker", "clean_db")
async def test_edit_applies_to_running_beat(
    tg_env: dict[str, str], tg_api: httpx.AsyncClient, tgemu: Any, db: AsyncSession, tmp_path: Path
) -> None:
    """check-new-bindings edited to every 2 s while beat runs: the worker's check keeps
    touching a waiting binding; disabled, it stops."""
    app = make_celery(settings_from(tg_env))
    for name in schedules.DEFAULT_NAMES:  # a clean slate for this prefix
        RedBeatSchedulerEntry(name, app=app).delete()
    bot = tgemu.create_bot()
    bot_id = await register_bot(tg_api, bot, alias="b")
    channel = tgemu.create_channel("Waiting", username=tgemu.unique("wait"))
    bound = await bind_channel(tg_api, channel, bot_id=bot_id)
    assert bound["status"] == "new", bound
    binding_id = bound["binding_id"]

    async def checked_at() -> datetime | None:
        stmt = select(Binding.last_checked_at).where(Binding.id == binding_id)
        return (await db.execute(stmt)).scalar_one()

    beat = BeatProcess(tg_env, tmp_path / "beat.log")
    try:
        beat.wait_ready()
        start = await checked_at()
        schedules.set_schedule(app, "check-new-bindings", "every 2")
        seen = {start}
        deadline = time.monotonic() + 30
        while len(seen) < 4 and time.monotonic() < deadline:  # three more runs
            await asyncio.sleep(0.3)
            await db.rollback()
            seen.add(await checked_at())
        assert len(seen) >= 4, beat.log()[-2000:]
        row = by_name(app)["check-new-bindings"]
        assert row.spec == "every 2" and row.last_run is not None

        schedules.set_enabled(app, "check-new-bindings", False)
        await asyncio.sleep(6)  # a run already sent may still land
        await db.rollback()
        paused = await checked_at()
        await asyncio.sleep(6)
        await db.rollback()
        assert await checked_at() == paused
    finally:
        schedules.set_schedule(app, "check-new-bindings", "cron 0 * * * *")
        schedules.set_enabled(app, "check-new-bindings", True)
        beat.stop()

    task_id = schedules.run_now(app, "check-active-bindings")
    result = await asyncio.to_thread(app.AsyncResult(task_id).get, timeout=60)
    assert result["status_code"] == 200 and "checked" in result["body"]
    assert by_name(app)["check-active-bindings"].task == CHECK_ACTIVE
    with pytest.raises(schedules.ScheduleError):
        schedules.run_now(app, "nope")
