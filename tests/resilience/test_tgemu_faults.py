"""Telegram misbehaving while posts flow, with a real worker and tgemu: flood waits
(injected, avoided by the worker's pacing, provoked by a limit stricter than it),
dropped connections, latency spikes, a token revoked, rights revoked and a channel
deleted mid-run. Each post ends sent exactly once, or failed with the right status and
reason; bindings and bots follow."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from celery import Celery
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from botmgr.models import Binding, Bot, Post
from botmgr.tasks.names import CHECK_BINDING
from botmgr.worker.app import make_celery
from tests.harness import flows
from tests.harness.client import api_client
from tests.harness.env import scoped_env, settings_from
from tests.harness.flows import delivered, fleet, run_task
from tests.harness.processes import WorkerProcess, running
from tests.harness.tgemu import TgEmu, spawn_tgemu
from tests.resilience.proxy import DroppingProxy

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TgEmu]:
    with spawn_tgemu(tmp_path_factory.mktemp("faults-tgemu")) as running:
        # The proxy stands in front of the entry DC only: keep this module's bots there,
        # so every connection of theirs runs through it.
        running.config(bot_dcs=[2])
        yield running


@pytest.fixture(scope="module")
def proxy(emu: TgEmu) -> Iterator[DroppingProxy]:
    running = DroppingProxy(emu.host, emu.port)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def env(emu: TgEmu, proxy: DroppingProxy, private_db: str) -> Iterator[dict[str, str]]:
    # The service reaches tgemu only through the proxy.
    via = SimpleNamespace(host=proxy.host, port=proxy.port, public_key_path=emu.public_key_path)
    with scoped_env(private_db, via) as env:
        yield env


@pytest.fixture(scope="module")
def fault_worker(
    env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    log_path = tmp_path_factory.mktemp("faults") / "worker.log"
    with running(WorkerProcess(env, log_path, concurrency=4)) as process:
        yield process


@pytest.fixture(scope="module")
def celery(env: dict[str, str]) -> Celery:
    return make_celery(settings_from(env))


@pytest.fixture
async def api(
    env: dict[str, str], fault_worker: WorkerProcess, emu: TgEmu
) -> AsyncIterator[httpx.AsyncClient]:
    emu.clear_faults()
    emu.config(latency_ms=0)
    async with api_client(settings_from(env)) as client:
        yield client
    emu.config(latency_ms=0)


async def post(api: httpx.AsyncClient, channel: dict, text: str) -> str:
    """Enqueue a post into the tgemu ``channel``; its task id."""
    return (await flows.post(api, channel["id"], text))["task_id"]


async def settle(
    api: httpx.AsyncClient, task_ids: list[str], within: float = 60
) -> tuple[dict[str, dict], set[str]]:
    """Wait until every task has its final answer; returns them and the states seen."""
    deadline, seen, done = time.monotonic() + within, set(), {}
    while len(done) < len(task_ids):
        assert time.monotonic() < deadline, f"unfinished: {set(task_ids) - set(done)}"
        for task_id in set(task_ids) - set(done):
            task = (await api.get(f"/tasks/{task_id}")).json()
            seen.add(task["task_status"])
            if task["task_status"] in ("SUCCESS", "FAILURE"):
                done[task_id] = task
        await asyncio.sleep(0.2)
    return done, seen


async def rows(env: dict[str, str], model: Any, *where: Any) -> list[Any]:
    engine = create_async_engine(env["BOTMGR_DATABASE_URL"])
    try:
        async with AsyncSession(engine) as session:
            return list((await session.execute(select(model).where(*where))).scalars())
    finally:
        await engine.dispose()


def once_each(emu: TgEmu, channels: list[dict], posts: list[Post]) -> None:
    """Every sent post is in its channel exactly once; nothing else was posted."""
    sent = delivered(emu, channels)
    assert max(sent.values(), default=1) == 1, sent
    assert set(sent) == {p.random_id for p in posts if p.status == "sent"}


async def test_injected_flood_waits_are_retried(
    api: httpx.AsyncClient, emu: TgEmu, celery: Celery, env: dict[str, str]
) -> None:
    [(bot, channel)] = await fleet(api, emu, celery, bots=1, channels_per_bot=1)
    emu.add_fault("messages.sendMessage", "FLOOD_WAIT_1", times=2, bot_id=bot["id"])
    task_id = await post(api, channel, "after two flood waits")
    done, seen = await settle(api, [task_id])
    assert "RETRY" in seen and done[task_id]["task_status"] == "SUCCESS"
    assert emu.metrics()["errors"]["messages.sendMessage FLOOD_WAIT_1"] == 2
    once_each(emu, [channel], await rows(env, Post, Post.task_id == task_id))


async def test_channel_limit_is_paced_without_flood_waits(
    api: httpx.AsyncClient, emu: TgEmu, celery: Celery, env: dict[str, str]
) -> None:
    """14 posts at once into one channel: the worker sends the burst of 10 and holds the
    other 4 (retried at their slots, 3 s apart) instead of provoking FLOOD_WAITs."""
    [(_, channel)] = await fleet(api, emu, celery, bots=1, channels_per_bot=1)
    before = emu.metrics()["flood_waits"]
    task_ids = [await post(api, channel, f"burst {i}") for i in range(14)]
    done, seen = await settle(api, task_ids, within=90)
    assert {t["task_status"] for t in done.values()} == {"SUCCESS"} and "RETRY" in seen
    assert emu.metrics()["flood_waits"] == before
    posts = await rows(env, Post, Post.task_id.in_(task_ids))
    assert {p.status for p in posts} == {"sent"}
    once_each(emu, [channel], posts)


async def test_stricter_telegram_limit_floods_then_everything_lands(
    api: httpx.AsyncClient, emu: TgEmu, celery: Celery, env: dict[str, str]
) -> None:
    """Telegram stricter than the pacer assumes (a burst of 3): its FLOOD_WAITs are
    honoured by retrying after the wait, and every post lands once."""
    [(_, channel)] = await fleet(api, emu, celery, bots=1, channels_per_bot=1)
    emu.config(rate_limits={"channel_burst": 3})
    try:
        before = emu.metrics()["flood_waits"]
        task_ids = [await post(api, channel, f"strict {i}") for i in range(6)]
        done, _ = await settle(api, task_ids, within=90)
        assert emu.metrics()["flood_waits"] > before
    finally:
        emu.config(rate_limits={"channel_burst": 10})
    assert {t["task_status"] for t in done.values()} == {"SUCCESS"}
    posts = await rows(env, Post, Post.task_id.in_(task_ids))
    assert {p.status for p in posts} == {"sent"}
    once_each(emu, [channel], posts)


async def test_dropped_connections_mid_send(
    api: httpx.AsyncClient, emu: TgEmu, celery: Celery, env: dict[str, str], proxy: DroppingProxy
) -> None:
    pairs = await fleet(api, emu, celery, bots=1, channels_per_bot=2)
    channels = [c for _, c in pairs]
    emu.config(latency_ms=1500)  # the message is stored, the answer is on its way...
    task_ids = [await post(api, c, "cut mid-flight") for c in channels]
    for _ in range(100):
        if all(emu.messages(c["id"]) for c in channels):
            break
        await asyncio.sleep(0.05)
    assert proxy.drop() >= 1  # ...and the connection goes
    emu.config(latency_ms=0)
    task_ids.append(await post(api, channels[0], "after the drop"))
    done, _ = await settle(api, task_ids)
    assert {t["task_status"] for t in done.values()} == {"SUCCESS"}
    posts = await rows(env, Post, Post.task_id.in_(task_ids))
    assert {p.status for p in posts} == {"sent"}
    once_each(emu, channels, posts)


async def test_latency_spike(
    api: httpx.AsyncClient, emu: TgEmu, celery: Celery, env: dict[str, str]
) -> None:
    channels = [c for _, c in await fleet(api, emu, celery, bots=2, channels_per_bot=2)]
    emu.config(latency_ms=2500)
    task_ids = [await post(api, c, f"slow {i}") for i, c in enumerate(channels * 2)]
    await asyncio.sleep(1)
    emu.config(latency_ms=0)
    done, _ = await settle(api, task_ids)
    assert {t["task_status"] for t in done.values()} == {"SUCCESS"}
    posts = await rows(env, Post, Post.task_id.in_(task_ids))
    assert {p.status for p in posts} == {"sent"}
    once_each(emu, channels, posts)


async def run_then_break(
    api: httpx.AsyncClient, emu: TgEmu, channels: list[dict], breaking: Any, count: int = 8
) -> list[str]:
    """Enqueue ``count`` posts slowly answered; break something after the first lands."""
    emu.config(latency_ms=300)
    task_ids = [await post(api, channels[i % len(channels)], f"run {i}") for i in range(count)]
    for _ in range(200):
        if any(emu.messages(c["id"]) for c in channels):
            break
        await asyncio.sleep(0.05)
    breaking()
    return task_ids


async def test_token_revoked_mid_run(
    api: httpx.AsyncClient, emu: TgEmu, celery: Celery, env: dict[str, str]
) -> None:
    pairs = await fleet(api, emu, celery, bots=1, channels_per_bot=2)
    bot, channels = pairs[0][0], [c for _, c in pairs]
    task_ids = await run_then_break(api, emu, channels, lambda: emu.revoke_token(bot["id"]))
    done, _ = await settle(api, task_ids)
    posts = await rows(env, Post, Post.task_id.in_(task_ids))
    statuses = Counter(p.status for p in posts)
    assert statuses["sent"] >= 1 and statuses["failed"] >= 1 and not statuses["queued"], [
        done[p.task_id] for p in posts if p.status == "queued"
    ]
    for p in posts:
        if p.status == "failed":
            assert "token" in p.error or "bot is invalid" in p.error, p.error
            assert done[p.task_id]["task_result"]["message"] == p.error
    [row] = await rows(env, Bot, Bot.tg_id == bot["id"])
    assert row.status == "invalid" and "token" in row.status_reason
    bindings = await rows(env, Binding, Binding.bot_id == row.id)
    assert {b.status for b in bindings} == {"invalid"} and all(b.reason for b in bindings)
    once_each(emu, channels, posts)


async def test_rights_revoked_mid_run(
    api: httpx.AsyncClient, emu: TgEmu, celery: Celery, env: dict[str, str]
) -> None:
    [(bot, channel)] = await fleet(api, emu, celery, bots=1, channels_per_bot=1)
    task_ids = await run_then_break(
        api, emu, [channel], lambda: emu.revoke_admin(channel["id"], bot["id"])
    )
    await settle(api, task_ids)
    posts = await rows(env, Post, Post.task_id.in_(task_ids))
    statuses = Counter(p.status for p in posts)
    assert statuses["sent"] >= 1 and statuses["failed"] >= 1 and not statuses["queued"]
    [binding] = await rows(env, Binding, Binding.id == channel["binding_id"])
    assert binding.status == "invalid"
    assert "may not post" in binding.reason or "not an admin" in binding.reason, binding.reason
    assert {p.error.split(":")[0] for p in posts if p.status == "failed"} <= {
        "bot cannot post in the channel",
        "binding is invalid",
    }
    once_each(emu, [channel], posts)
    checked = await run_task(celery, CHECK_BINDING, binding.id)
    assert checked["body"]["status"] == "invalid"


async def test_channel_deleted_mid_run(
    api: httpx.AsyncClient, emu: TgEmu, celery: Celery, env: dict[str, str]
) -> None:
    [(_, channel)] = await fleet(api, emu, celery, bots=1, channels_per_bot=1)
    sent_before = []

    def delete() -> None:
        sent_before.extend(emu.messages(channel["id"]))
        emu.delete_channel(channel["id"])

    task_ids = await run_then_break(api, emu, [channel], delete)
    await settle(api, task_ids)
    posts = await rows(env, Post, Post.task_id.in_(task_ids))
    statuses = Counter(p.status for p in posts)
    assert statuses["sent"] >= 1 and statuses["failed"] >= 1 and not statuses["queued"]
    [binding] = await rows(env, Binding, Binding.id == channel["binding_id"])
    assert binding.status == "invalid" and binding.reason, binding.reason
    assert "CHANNEL" in binding.reason or "channel" in binding.reason
    assert len(sent_before) <= statuses["sent"]
