"""Login throttling (botmgr/throttle.py) at the production limit, 10 failures a minute:
the 11th wrong password is 429 with Retry-After for the API's Basic auth and for the
console's form, counted in Redis (so across API processes and across the two channels),
per address and per username; every failure is logged, never with the password."""

from __future__ import annotations

import logging
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import redis

from botmgr.app import create_app
from botmgr.settings import Settings
from tests.harness.client import BASE_URL
from tests.harness.env import REDIS_URL, ROOT, USER, drop_redis_prefix, settings_from
from tests.harness.processes import ApiProcess, botmgr_argv, free_port, running, wait_http

pytestmark = pytest.mark.timeout(120)
LIMIT = 10
WRONG = "wrong-password-that-must-never-be-logged"


@pytest.fixture
def env(service_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The service's environment with the production limit and counts of its own."""
    prefix = f"botmgr-test-throttle-{uuid.uuid4().hex[:10]}:"
    yield {
        **service_env,
        "BOTMGR_LOGIN_MAX_FAILURES": str(LIMIT),
        "BOTMGR_LOGIN_WINDOW_SECONDS": "60",
        "BOTMGR_REDIS_PREFIX": prefix,
    }
    drop_redis_prefix(prefix)


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[object]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


def client(app: object, address: str = "203.0.113.7") -> httpx.AsyncClient:
    """A client of ``app`` whose requests come from ``address`` (the ASGI peer: what
    uvicorn hands the app, after believing or not a proxy's X-Forwarded-For)."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=30)


def password(settings: Settings) -> str:
    return settings.auth_password.get_secret_value()


def failures(caplog: pytest.LogCaptureFixture, channel: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "botmgr.throttle"
        and r.getMessage().startswith(f"failed login: channel={channel}")
    ]


def assert_throttled(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    return retry_after


async def test_the_eleventh_wrong_api_password_is_429_logged_without_it(
    env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="botmgr.throttle")
    settings = settings_from(env)
    async with serving(settings) as app, client(app) as api:
        for _ in range(LIMIT):
            response = await api.get("/bots/", auth=(USER, WRONG))
            assert response.status_code == 401, response.text
        refused = await api.get("/bots/", auth=(USER, WRONG))
        wait = assert_throttled(refused)
        assert refused.json() == {
            "status": "error",
            "message": f"too many failed logins; retry in {wait} s",
        }
        # Even the right password: a throttled guesser must not learn which guess was right.
        assert_throttled(await api.get("/channels/", auth=(USER, password(settings))))
    logged = failures(caplog, "api")
    assert len(logged) == LIMIT
    assert all(f"username='{USER}'" in m and "address=203.0.113.7" in m for m in logged)
    assert "address 10, username 10 (limit 10)" in logged[-1]
    assert any("login throttled: address 203.0.113.7" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert WRONG not in record.getMessage() and password(settings) not in record.getMessage()


async def test_the_eleventh_wrong_console_password_is_a_429_login_page(
    env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="botmgr.throttle")
    settings = settings_from(env)
    async with serving(settings) as app, client(app, "198.51.100.4") as console:
        for _ in range(LIMIT):
            response = await console.post(
                "/admin/login", data={"username": USER, "password": WRONG}
            )
            assert response.status_code == 400 and "Invalid credentials" in response.text
        refused = await console.post("/admin/login", data={"username": USER, "password": WRONG})
        wait = assert_throttled(refused)
        assert f"Too many failed logins: try again in {wait} s." in refused.text
        assert 'name="password"' in refused.text  # the login form, with the message
        right = await console.post(
            "/admin/login", data={"username": USER, "password": password(settings)}
        )
        assert_throttled(right)
        assert "botmgr_console" not in console.cookies  # no session for it either
    logged = failures(caplog, "console")
    assert len(logged) == LIMIT and all("address=198.51.100.4" in m for m in logged)
    for record in caplog.records:
        assert WRONG not in record.getMessage() and password(settings) not in record.getMessage()


async def test_api_and_console_failures_add_up(env: dict[str, str]) -> None:
    async with serving(settings_from(env)) as app, client(app) as http:
        for _ in range(LIMIT // 2):
            assert (await http.get("/bots/", auth=(USER, WRONG))).status_code == 401
            form = {"username": USER, "password": WRONG}
            assert (await http.post("/admin/login", data=form)).status_code == 400
        assert_throttled(await http.post("/admin/login", data=form))
        assert_throttled(await http.get("/bots/", auth=(USER, WRONG)))


async def test_a_username_is_throttled_across_addresses_but_not_where_it_logged_in(
    env: dict[str, str],
) -> None:
    settings = settings_from(env)
    right = (USER, password(settings))
    async with serving(settings) as app:
        async with client(app, "192.0.2.200") as home:  # the operator's integration
            assert (await home.get("/bots/", auth=right)).status_code == 200
        for n in range(LIMIT):  # one guess from each of 10 addresses, same username
            async with client(app, f"192.0.2.{n + 1}") as guesser:
                assert (await guesser.get("/bots/", auth=(USER, WRONG))).status_code == 401
        async with client(app, "192.0.2.100") as fresh:
            assert_throttled(await fresh.get("/bots/", auth=(USER, WRONG)))
            assert_throttled(await fresh.get("/bots/", auth=right))  # same answer as a guess
            # Another username from there: only its own, empty count.
            assert (await fresh.get("/bots/", auth=("someone", WRONG))).status_code == 401
        async with client(app, "192.0.2.200") as home:  # logged in before: not locked out
            assert (await home.get("/bots/", auth=right)).status_code == 200
    # The same in another process (no memory of the pair passing): the mark is in Redis.
    async with serving(settings) as app, client(app, "192.0.2.200") as home:
        assert (await home.get("/bots/", auth=right)).status_code == 200
    async with serving(settings) as app, client(app, "192.0.2.201") as other:
        assert_throttled(await other.get("/bots/", auth=right))


async def test_a_success_resets_no_other_address(env: dict[str, str]) -> None:
    settings = settings_from(env)
    right = (USER, password(settings))
    async with serving(settings) as app:
        async with client(app, "203.0.113.50") as guesser:
            for _ in range(LIMIT):
                form = {"username": "nobody", "password": WRONG}
                assert (await guesser.post("/admin/login", data=form)).status_code == 400
        async with client(app, "203.0.113.51") as operator:
            assert (await operator.get("/bots/", auth=right)).status_code == 200
            login = {"username": USER, "password": password(settings)}
            assert (await operator.post("/admin/login", data=login)).status_code == 302
        async with client(app, "203.0.113.50") as guesser:
            assert_throttled(await guesser.get("/bots/", auth=right))


async def test_redis_down_counts_in_the_process(
    env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Fail open, to this process's memory: nobody is locked out by the outage, guessing
    is still bounded; the outage is logged once, not once per login."""
    caplog.set_level(logging.INFO, logger="botmgr.throttle")
    settings = settings_from({**env, "BOTMGR_REDIS_URL": "redis://127.0.0.1:1/0"})
    right = (USER, password(settings))
    async with serving(settings) as app:
        async with client(app, "198.51.100.1") as operator:
            assert (await operator.get("/healthz")).status_code == 503  # Redis is down
            assert (await operator.get("/bots/", auth=right)).status_code == 200
        async with client(app, "198.51.100.2") as guesser:
            for _ in range(LIMIT):
                assert (await guesser.get("/bots/", auth=(USER, WRONG))).status_code == 401
            assert_throttled(await guesser.get("/bots/", auth=(USER, WRONG)))
    outages = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(outages) == 1


def test_the_count_holds_across_two_api_processes(env: dict[str, str]) -> None:
    """``botmgr api --workers 2``: every request on a new connection, so the kernel hands
    them to either process; the 11th failure and what follows are 429 wherever they land,
    and the count is the one in Redis."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        botmgr_argv("api", "--port", str(port), "--workers", "2"),
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    right = (USER, env["BOTMGR_AUTH_PASSWORD"])
    # uvicorn believes X-Forwarded-For from 127.0.0.1 (BOTMGR_FORWARDED_ALLOW_IPS): this
    # test is nginx, and the address it forwards is the one counted.
    forwarded = {"X-Forwarded-For": "192.0.2.77", "Connection": "close"}
    try:
        wait_http(f"{url}/healthz", (200,), process)
        for _ in range(LIMIT):
            response = httpx.get(f"{url}/bots/", auth=("intruder", WRONG), headers=forwarded)
            assert response.status_code == 401
        for _ in range(12):
            assert_throttled(httpx.get(f"{url}/bots/", auth=right, headers=forwarded))
        # Another address: the operator's username was not the one guessed under.
        elsewhere = {"X-Forwarded-For": "192.0.2.78", "Connection": "close"}
        assert httpx.get(f"{url}/bots/", auth=right, headers=elsewhere).status_code == 200
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    log = err.decode(errors="replace")
    assert log.count("failed login: channel=api") == LIMIT, log[-3000:]
    assert WRONG not in log and env["BOTMGR_AUTH_PASSWORD"] not in log
    client_redis = redis.Redis.from_url(REDIS_URL)
    try:
        key = f"{env['BOTMGR_REDIS_PREFIX']}login:fail:addr:192.0.2.77"
        assert int(client_redis.get(key) or 0) == LIMIT
        assert 0 < client_redis.ttl(key) <= 60
    finally:
        client_redis.close()


def test_a_client_cannot_pick_its_address_where_the_proxy_is_not_trusted(
    env: dict[str, str], tmp_path: Path
) -> None:
    """From a peer outside BOTMGR_FORWARDED_ALLOW_IPS a made-up X-Forwarded-For is not
    believed: a fresh one on every guess still counts against the peer's address."""
    untrusting = {**env, "BOTMGR_FORWARDED_ALLOW_IPS": "10.9.9.9"}
    with running(ApiProcess(untrusting, tmp_path / "api.log")) as api:
        for n in range(LIMIT):
            spoofed = {"X-Forwarded-For": f"198.18.0.{n + 1}"}
            response = httpx.get(f"{api.url}/bots/", auth=("x", WRONG), headers=spoofed)
            assert response.status_code == 401
        refused = httpx.get(
            f"{api.url}/bots/", auth=api.auth, headers={"X-Forwarded-For": "198.18.1.1"}
        )
        assert_throttled(refused)
        assert api.log().count("address=127.0.0.1") == LIMIT
