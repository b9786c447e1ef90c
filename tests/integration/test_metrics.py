"""``GET /metrics`` of real processes: ``botmgr worker --processes 2`` and ``botmgr api``
(then ``--workers 2``) against a private tgemu. What the scrape counts is what the run
did — posts sent, flood waits tgemu injected, Telegram calls as tgemu counted them — and
parses with prometheus-client's own parser."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from botmgr.worker.app import make_celery
from tests.harness.env import settings_from
from tests.harness.flows import fleet, post, wait_task
from tests.harness.processes import ApiProcess, BotmgrProcess
from tests.harness.stack import ServiceStack, service_stack

pytestmark = pytest.mark.timeout(180)
SEND = "messages.sendMessage"
LOGIN = "auth.importBotAuthorization"
FLOODS, POSTS = 2, 6


def scrape(url: str, auth: tuple[str, str]) -> dict[tuple[str, frozenset], float]:
    """Every sample of a /metrics scrape: (name, labels) → value."""
    response = httpx.get(f"{url}/metrics", auth=auth, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples that carry ``labels`` (0 when there is none)."""
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= got)


def start_workers(running: ServiceStack, processes: int) -> BotmgrProcess:
    """``botmgr worker --processes N`` (one command: one metrics group), ready."""
    workers = BotmgrProcess(
        running.env,
        running.workdir / "workers.log",
        ["worker", f"--processes={processes}", "--concurrency=4"],
    )
    deadline = time.monotonic() + 60
    while workers.log().count(" ready.") < processes:
        if workers.process.poll() is not None or time.monotonic() > deadline:
            workers.stop()
            raise RuntimeError(f"workers did not start:\n{workers.log()[-3000:]}")
        time.sleep(0.1)
    return workers


async def post_through_floods(running: ServiceStack) -> None:
    """Two bots with a channel each; ``FLOODS`` FLOOD_WAIT_1 answers injected into the
    sends, then ``POSTS`` posts, all sent in the end."""
    assert running.api is not None and running.emu is not None
    celery = make_celery(settings_from(running.env), polling=True)
    async with httpx.AsyncClient(
        base_url=running.api.url, auth=running.api.auth, timeout=60
    ) as api:
        pairs = await fleet(api, running.emu, celery, bots=2, channels_per_bot=1)
        running.emu.add_fault(SEND, "FLOOD_WAIT_1", times=FLOODS)
        queued = [
            await post(api, channel["id"], f"post {n}")
            for n in range(POSTS // 2)
            for _, channel in pairs
        ]
        for answer in queued:
            task = await wait_task(api, answer["task_id"], tries=300)
            assert task["task_status"] == "SUCCESS", task


def test_counters_match_what_the_run_did(tmp_path: Path) -> None:
    with service_stack(tmp_path, BOTMGR_RETRY_UNREACHABLE_SECONDS="1") as running:
        assert running.api is not None and running.emu is not None
        workers = start_workers(running, 2)
        try:
            asyncio.run(post_through_floods(running))
            samples = scrape(running.api.url, running.api.auth)
            emu = running.emu.metrics()
        finally:
            workers.stop()
        anonymous = httpx.get(f"{running.api.url}/metrics", timeout=10)
    assert anonymous.status_code == 401
    assert value(samples, "botmgr_posts_total", status="sent") == POSTS
    assert value(samples, "botmgr_posts_total", status="failed") == 0
    assert value(samples, "botmgr_post_latency_seconds_count") == POSTS
    assert value(samples, "botmgr_telegram_flood_waits_total", method=SEND) == FLOODS
    assert value(samples, "botmgr_telegram_flood_wait_seconds_total", method=SEND) == FLOODS
    errors = value(samples, "botmgr_telegram_errors_total", method=SEND, error="FLOOD_WAIT")
    assert errors == FLOODS
    # Every send and login as tgemu counted them: the workers' and the API's, added up.
    assert value(samples, "botmgr_telegram_calls_total", method=SEND) == POSTS + FLOODS
    assert emu["calls"][SEND] == POSTS + FLOODS
    assert value(samples, "botmgr_telegram_calls_total", method=LOGIN) == emu["calls"][LOGIN]
    # The state gauges, read from PostgreSQL and Redis at the scrape.
    assert value(samples, "botmgr_fleet_gauges_up") == 1
    assert value(samples, "botmgr_bots", status="active") == 2
    assert value(samples, "botmgr_bindings", status="active") == 2
    assert value(samples, "botmgr_posts_queued") == 0
    assert value(samples, "botmgr_oldest_due_post_age_seconds") == 0
    assert value(samples, "botmgr_queue_depth", queue="shared") == 0


class TwoApiProcesses(ApiProcess):
    def command(self, loglevel: str) -> list[str]:
        return [*super().command(loglevel), "--workers", "2"]


async def register_bots(api: ApiProcess, tokens: list[str]) -> None:
    # One connection per request: the kernel hands them to either process.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=api.url, auth=api.auth, timeout=60, limits=limits
    ) as client:
        answers = await asyncio.gather(
            *(client.post("/bots/", json={"alias": "m", "token": t}) for t in tokens)
        )
    assert [a.status_code for a in answers] == [200] * len(tokens), [a.text for a in answers]


def logins_per_process(root: Path) -> dict[str, float]:
    """counter file (one per API process) → the logins it counted."""
    return {
        f.name: sum(
            s.value
            for family in MultiProcessCollector.merge([str(f)])
            for s in family.samples
            if s.name == "botmgr_telegram_calls_total" and s.labels["method"] == LOGIN
        )
        for f in root.glob("api-*/counter_*.db")
    }


def test_two_api_processes_counts_add_up(tmp_path: Path) -> None:
    with service_stack(tmp_path, api=False) as running:
        assert running.emu is not None
        root = Path(running.env["BOTMGR_METRICS_DIR"])
        api = TwoApiProcesses(running.env, tmp_path / "api.log", loglevel="WARNING")
        try:
            api.wait_ready()
            # Registrations (a login each) until both processes took some: which process
            # accepts a connection is the kernel's choice.
            for _ in range(15):
                tokens = [running.emu.create_bot()["token"] for _ in range(4)]
                asyncio.run(register_bots(api, tokens))
                if len([n for n in logins_per_process(root).values() if n]) == 2:
                    break
            scrapes = [scrape(api.url, api.auth) for _ in range(4)]  # either process answers
        finally:
            api.stop()
        logins = running.emu.metrics()["calls"][LOGIN]
        per_process = logins_per_process(root)
    assert logins >= 4
    for samples in scrapes:
        assert value(samples, "botmgr_telegram_calls_total", method=LOGIN) == logins
    assert sum(per_process.values()) == logins
    assert len([n for n in per_process.values() if n]) == 2, per_process  # both served
