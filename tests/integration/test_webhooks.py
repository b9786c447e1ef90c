"""Signed webhooks end to end (issue 17): a real worker, beat and tgemu; a receiver on
loopback (BOTMGR_WEBHOOK_ALLOW_PRIVATE=1) that checks every request with the README's
own verification snippet.

Short timings stand in for production's: retries after 1 s doubling to 2 s, a 3 s
attempt timeout, the reconciler every 2 s.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from celery import Celery

from botmgr.settings import Settings
from botmgr.tasks.names import CHECK_BINDING, CHECK_BOT, COLLECT_STATS
from botmgr.webhooks.delivery import Request, send
from botmgr.worker.app import make_celery
from tests.harness.client import api_client
from tests.harness.env import ROOT, SHORT_WAITS, drop_redis_prefix, make_env, settings_from
from tests.harness.fleet import wait_until
from tests.harness.flows import WAIT, bound_channel, register_bot, run_task
from tests.harness.processes import BeatProcess, WorkerProcess, free_port, running
from tests.harness.tgemu import TgEmu

pytestmark = pytest.mark.timeout(300)
SECRET = "whsec-" + "k3y" * 8  # what every endpoint of these tests signs with
SHORT = {
    **SHORT_WAITS,
    "BOTMGR_WEBHOOK_ALLOW_PRIVATE": "1",
    "BOTMGR_WEBHOOK_TIMEOUT_SECONDS": "3",
    "BOTMGR_WEBHOOK_RETRY_FIRST_SECONDS": "1",
    "BOTMGR_WEBHOOK_RETRY_LONGEST_SECONDS": "2",
}


def readme_verify() -> Callable[..., dict]:
    """The README's verification snippet, run as it is printed there."""
    text = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- webhook-verify:.*?-->\s*```python\n(.*?)```", text, re.S)
    assert found, "README: the webhook verification snippet is missing"
    code = "\n".join(line.removeprefix("  ") for line in found.group(1).splitlines())
    scope: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), scope)
    return scope["verify"]


VERIFY = readme_verify()


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    event: dict  # verified with the README's code
    at: float


@dataclass
class Receiver:
    """An HTTP server on loopback; ``answers[path]``: statuses to give in turn (then
    200), or "hang" to hold the request for 20 s."""

    port: int
    hits: list[Hit] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # requests that failed the check
    answers: dict[str, list[int | str]] = field(default_factory=dict)
    server: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k: v for k, v in self.headers.items()}
                try:
                    event = VERIFY(SECRET, headers, body)
                except (ValueError, KeyError) as exc:
                    receiver.refused.append(f"{self.path}: {exc}")
                    self.send_response(401)
                    self.end_headers()
                    return
                planned = receiver.answers.get(self.path) or [200]
                answer = planned.pop(0) if len(planned) > 1 else planned[0]
                if answer == "hang":
                    time.sleep(20)
                    answer = 200
                receiver.hits.append(Hit(self.path, headers, event, time.monotonic()))
                self.send_response(int(answer))
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def events(self, path: str) -> list[dict]:
        return [h.event for h in self.hits if h.path == path]


@dataclass
class Stack:
    settings: Settings
    celery: Celery
    worker: WorkerProcess
    receiver: Receiver


@pytest.fixture(scope="module")
def stack(
    tgemu: TgEmu, private_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = make_env(private_db, tgemu, **SHORT)
    logs = tmp_path_factory.mktemp("webhooks")
    settings = settings_from(env)
    receiver = Receiver(free_port())
    receiver.start()
    try:
        with (
            running(
                WorkerProcess(env, logs / "worker.log", concurrency=4, loglevel="DEBUG")
            ) as worker,
            running(BeatProcess(env, logs / "beat.log")),
        ):
            yield Stack(settings, make_celery(settings), worker, receiver)
    finally:
        receiver.stop()
        drop_redis_prefix(env["BOTMGR_REDIS_PREFIX"])


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(stack.settings) as client:
        yield client


async def until(check: Callable[[], object], within: float, what: str) -> None:
    """The harness's wait_until for a check that needs no awaiting."""

    async def ready() -> bool:
        return bool(check())

    await wait_until(ready, within, what)


async def hook(api: httpx.AsyncClient, url: str, events: list[str] | None = None) -> int:
    body: dict[str, Any] = {"url": url, "secret": SECRET}
    if events is not None:
        body["events"] = events
    response = await api.post("/webhooks", json=body)
    assert response.status_code == 201, response.text
    assert SECRET not in response.text
    return int(response.json()["id"])


async def deliveries(api: httpx.AsyncClient, webhook_id: int) -> list[dict]:
    response = await api.get(f"/webhooks/{webhook_id}/deliveries")
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def by_event(events: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for event in events:
        grouped.setdefault(event["event"], []).append(event)
    return grouped


async def test_every_event_arrives_once_signed(
    api: httpx.AsyncClient, tgemu: TgEmu, stack: Stack
) -> None:
    receiver, celery = stack.receiver, stack.celery
    hook_id = await hook(api, receiver.url("/all"))
    got = lambda: by_event(receiver.events("/all"))  # noqa: E731

    # binding.activated: bound before the rights, activated by a check
    bot = tgemu.create_bot()
    bot_id = await register_bot(api, bot)
    channel = await bound_channel(api, tgemu, celery, bot, grant_first=False)
    tgemu.grant_admin(channel["id"], bot["id"], post_messages=True, edit_messages=True)
    await until(lambda: got().get("binding.activated"), 20, "binding.activated")

    # post.sent, post.edited, post.deleted
    sent = await api.post(
        "/messages", json={"channel_id": channel["id"], "message": "hello"}, headers=WAIT
    )
    assert sent.status_code == 200, sent.text
    post_id = sent.json()["post_id"]
    edit = await api.patch(f"/messages/{post_id}", json={"message": "edited"}, headers=WAIT)
    assert edit.status_code == 200 and edit.json()["action"] == "edited", edit.text
    removed = await api.delete(f"/messages/{post_id}", headers=WAIT)
    assert removed.status_code == 200 and removed.json()["action"] == "deleted", removed.text
    await until(lambda: got().get("post.deleted"), 20, "post.deleted")

    # stats.collected
    today = datetime.now(UTC).date().isoformat()
    collected = await run_task(celery, COLLECT_STATS, day=today)
    assert collected["body"]["collected"] >= 1, collected
    await until(lambda: got().get("stats.collected"), 20, "stats.collected")

    # binding.moved: a second bot can post there; the first loses its rights
    spare = tgemu.create_bot()
    await register_bot(api, spare, alias="spare")
    tgemu.grant_admin(channel["id"], spare["id"], post_messages=True)
    tgemu.revoke_admin(channel["id"], bot["id"])
    await run_task(celery, CHECK_BINDING, channel["binding_id"])
    await until(lambda: got().get("binding.moved"), 20, "binding.moved")

    # post.failed (+ binding.invalid): nobody may post in a channel any more
    lost = await bound_channel(api, tgemu, celery, bot, prefix="lost")
    tgemu.revoke_admin(lost["id"], bot["id"])
    failed = await api.post(
        "/messages", json={"channel_id": lost["id"], "message": "nope"}, headers=WAIT
    )
    assert failed.status_code == 503, failed.text
    await until(lambda: got().get("post.failed"), 20, "post.failed")

    # bot.invalid: its token is revoked
    tgemu.revoke_token(bot["id"])
    await run_task(celery, CHECK_BOT, bot_id)
    await until(lambda: got().get("bot.invalid"), 20, "bot.invalid")
    await asyncio.sleep(3)  # any duplicate (a retry, a reconciler copy) would be here by now

    events = got()
    assert not receiver.refused, receiver.refused
    activated = [e["data"] for e in events["binding.activated"]]
    assert [a["binding_id"] for a in activated if a["channel_id"] == channel["id"]] == [
        channel["binding_id"]
    ]
    assert len({a["binding_id"] for a in activated}) == len(activated)  # once each
    [posted] = events["post.sent"]
    assert posted["data"]["post_id"] == post_id and posted["data"]["link"] == sent.json()["link"]
    [edited] = events["post.edited"]
    [deleted] = events["post.deleted"]
    assert edited["data"]["post_id"] == deleted["data"]["post_id"] == post_id
    assert deleted["data"]["status"] == "deleted" and deleted["data"]["auto"] is False
    [stats] = events["stats.collected"]
    assert stats["data"] == collected["body"]
    [moved] = events["binding.moved"]
    assert moved["data"]["binding_id"] == channel["binding_id"]
    assert moved["data"]["from_bot_id"] == bot_id and moved["data"]["bot_id"] != bot_id
    [failure] = events["post.failed"]
    assert failure["data"]["post_id"] == failed.json()["post_id"] and failure["data"]["error"]
    invalid = [e["data"] for e in events["binding.invalid"]]
    assert [i["binding_id"] for i in invalid] == [lost["binding_id"]]  # rights lost, once
    [dead] = events["bot.invalid"]
    assert dead["data"]["bot_id"] == bot_id and "token" in dead["data"]["reason"]
    # Headers: the event's name, the delivery id (unique), a signature over the timestamp.
    hits = [h for h in receiver.hits if h.path == "/all"]
    assert all(h.headers["X-Botmgr-Event"] == h.event["event"] for h in hits)
    assert len({h.headers["X-Botmgr-Delivery"] for h in hits}) == len(hits)
    assert len({h.event["id"] for h in hits}) == len(hits)
    recorded = await _wait_rows(api, hook_id, lambda d: d["status"] != "pending", 10)
    assert all(d["status"] == "delivered" and d["attempts"] == 1 for d in recorded), recorded
    assert len(recorded) == len(hits)


async def test_retried_after_two_500s_then_delivered(
    api: httpx.AsyncClient, tgemu: TgEmu, stack: Stack
) -> None:
    receiver = stack.receiver
    receiver.answers["/flaky"] = [500, 500, 200]
    hook_id = await hook(api, receiver.url("/flaky"), ["post.sent"])
    bot = tgemu.create_bot()
    await register_bot(api, bot)
    channel = await bound_channel(api, tgemu, stack.celery, bot, prefix="flaky")
    sent = await api.post(
        "/messages", json={"channel_id": channel["id"], "message": "retry"}, headers=WAIT
    )
    assert sent.status_code == 200, sent.text

    def delivered() -> list[Hit]:
        return [h for h in receiver.hits if h.path == "/flaky"]

    await until(lambda: len(delivered()) == 3, 30, "three attempts")
    hits = delivered()
    assert len({h.headers["X-Botmgr-Delivery"] for h in hits}) == 1  # the same delivery
    assert hits[1].at - hits[0].at >= 0.9 and hits[2].at - hits[1].at >= 1.9  # 1 s, 2 s
    # The receiver has answered; the worker writes that down a moment later.
    [row] = await _wait_rows(api, hook_id, lambda r: r["status"] != "pending", 10)
    assert row["status"] == "delivered" and row["attempts"] == 3, row
    assert row["last_status"] == 200 and row["last_error"] is None
    await asyncio.sleep(3)
    assert len(delivered()) == 3  # nothing after the 2xx

    # A replay sends it once more, same delivery id, and counts the attempt.
    replay = await api.post(f"/webhooks/deliveries/{row['id']}/replay")
    assert replay.status_code == 202, replay.text
    await until(lambda: len(delivered()) == 4, 20, "the replay")
    assert delivered()[-1].headers["X-Botmgr-Delivery"] == str(row["id"])


async def test_a_hanging_receiver_delays_no_post(
    api: httpx.AsyncClient, tgemu: TgEmu, stack: Stack
) -> None:
    """Every post.sent goes to a receiver that holds each request past the timeout:
    with 4 task threads, 10 posts in a row would wait for them if an attempt held one."""
    receiver = stack.receiver
    receiver.answers["/hang"] = ["hang"]
    hook_id = await hook(api, receiver.url("/hang"), ["post.sent"])
    bot = tgemu.create_bot()
    await register_bot(api, bot)
    channel = await bound_channel(api, tgemu, stack.celery, bot, prefix="hang")
    took = []
    for n in range(10):
        start = time.monotonic()
        sent = await api.post(
            "/messages", json={"channel_id": channel["id"], "message": f"p{n}"}, headers=WAIT
        )
        took.append(time.monotonic() - start)
        assert sent.status_code == 200, sent.text
    assert max(took) < 2.5, took  # a held thread would make some wait ~3 s (the timeout)
    recorded = await _wait_rows(api, hook_id, lambda r: r["attempts"] >= 1, 30)
    assert len(recorded) == 10
    assert all(r["last_error"] == "timed out" for r in recorded), recorded


async def _wait_rows(
    api: httpx.AsyncClient, hook_id: int, each: Callable[[dict], bool], within: float
) -> list[dict]:
    """The endpoint's deliveries, once every one of them satisfies ``each``."""
    rows: list[dict] = []

    async def ready() -> bool:
        rows[:] = await deliveries(api, hook_id)
        return bool(rows) and all(each(r) for r in rows)

    await wait_until(ready, within, f"deliveries of webhook {hook_id}")
    return rows


async def test_an_event_raised_while_the_receiver_is_down_arrives_later(
    api: httpx.AsyncClient, tgemu: TgEmu, stack: Stack
) -> None:
    down = Receiver(free_port())  # not started: connections are refused
    hook_id = await hook(api, down.url("/later"), ["post.sent"])
    bot = tgemu.create_bot()
    await register_bot(api, bot)
    channel = await bound_channel(api, tgemu, stack.celery, bot, prefix="later")
    sent = await api.post(
        "/messages", json={"channel_id": channel["id"], "message": "while down"}, headers=WAIT
    )
    assert sent.status_code == 200, sent.text
    [row] = await _wait_rows(api, hook_id, lambda r: r["attempts"] >= 2, 30)
    assert row["status"] == "pending" and row["last_status"] is None
    assert "Connect" in row["last_error"], row
    down.start()
    try:
        await until(lambda: down.events("/later"), 30, "the event after the receiver is back")
        [event] = down.events("/later")
        assert event["event"] == "post.sent" and event["data"]["post_id"] == sent.json()["post_id"]
        [row] = await _wait_rows(api, hook_id, lambda r: r["status"] == "delivered", 10)
        assert row["attempts"] >= 3
    finally:
        down.stop()


async def test_the_secret_is_never_shown_nor_logged(
    api: httpx.AsyncClient, stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    hook_id = await hook(api, stack.receiver.url("/quiet"), ["bot.invalid"])
    patched = await api.patch(f"/webhooks/{hook_id}", json={"secret": SECRET + "-2"})
    assert patched.status_code == 200 and "secret" not in patched.json()
    listed = await api.get("/webhooks")
    bad = await api.post("/webhooks", json={"url": "ftp://x.example/", "secret": SECRET})
    assert bad.status_code == 422
    short = await api.post("/webhooks", json={"url": stack.receiver.url("/"), "secret": "short"})
    assert short.status_code == 422 and "short" not in short.text
    for answer in (patched, listed, bad):
        assert SECRET not in answer.text
    assert SECRET not in caplog.text
    log = stack.worker.log()
    assert "webhook delivery" in log  # the worker logged its attempts …
    assert SECRET not in log  # … never the secret


async def test_private_targets_are_refused_without_the_setting(stack: Stack) -> None:
    strict = stack.settings.model_copy(update={"webhook_allow_private": False})
    async with api_client(strict) as api:
        for url in (
            stack.receiver.url("/"),
            "http://localhost:8080/",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "https://100.64.0.1/",
        ):
            response = await api.post("/webhooks", json={"url": url, "secret": SECRET})
            assert response.status_code == 422, (url, response.text)
            assert "BOTMGR_WEBHOOK_ALLOW_PRIVATE" in response.json()["message"], response.text
        public = await api.post("/webhooks", json={"url": "https://1.1.1.1/hook", "secret": SECRET})
        assert public.status_code == 201, public.text
        moved = await api.patch(
            f"/webhooks/{public.json()['id']}", json={"url": "http://127.0.0.1/"}
        )
        assert moved.status_code == 422, moved.text
        assert (await api.delete(f"/webhooks/{public.json()['id']}")).status_code == 204


async def test_an_address_turned_private_is_refused_at_delivery_time(stack: Stack) -> None:
    """Registered while allowed (as if DNS answered a public address then): the attempt
    checks again and sends nothing to a private address."""
    before = len(stack.receiver.hits)
    request = Request(1, stack.receiver.url("/late"), SECRET, "post.sent", b"{}")
    async with httpx.AsyncClient() as client:
        answer = await send(client, request, allow_private=False)
        assert answer.status is None and "127.0.0.1" in (answer.error or ""), answer
        allowed = await send(client, request, allow_private=True)
    assert allowed.delivered and allowed.status == 200
    assert [h.path for h in stack.receiver.hits[before:]] == ["/late"]  # the allowed one only
