"""Security headers (botmgr/headers.py) on every kind of answer of the app: the API's JSON
(success, 401, 404, 422), /healthz, the console's pages, its login form, its static files
and its refusals, and the docs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from botmgr.app import create_app
from botmgr.headers import DOCS_POLICY, POLICY
from tests.admin.conftest import client_for, login
from tests.harness.env import settings_from

pytestmark = pytest.mark.timeout(60)


def directives(policy: str) -> dict[str, list[str]]:
    parts = (d.split() for d in policy.split(";") if d.strip())
    return {p[0]: p[1:] for p in parts}


def check(response: httpx.Response, policy: str = POLICY) -> None:
    where = f"{response.request.method} {response.request.url.path} → {response.status_code}"
    headers = response.headers
    assert headers.get("x-content-type-options") == "nosniff", where
    assert headers.get("x-frame-options") == "DENY", where
    assert headers.get("referrer-policy") == "same-origin", where
    assert headers.get("content-security-policy") == policy, where
    assert len(headers.get_list("content-security-policy")) == 1, where


@pytest.fixture
async def app(service_env: dict[str, str]) -> AsyncIterator[FastAPI]:
    made = create_app(settings_from(service_env))
    async with made.router.lifespan_context(made):
        yield made


async def test_the_policies() -> None:
    strict = directives(POLICY)
    assert strict["frame-ancestors"] == ["'none'"]
    assert strict["script-src"] == ["'self'"]  # no inline script, no eval, no other host
    assert strict["object-src"] == ["'none'"] and strict["form-action"] == ["'self'"]
    for name, sources in {**strict, **directives(DOCS_POLICY)}.items():
        # Nothing from another host anywhere: only keywords, data: images, blob: workers.
        assert all(s.startswith("'") or s in ("data:", "blob:") for s in sources), name
    assert directives(DOCS_POLICY)["frame-ancestors"] == ["'none'"]


async def test_every_answer_carries_them(app: FastAPI, api: httpx.AsyncClient) -> None:
    async with client_for(app) as anonymous:
        for response in (
            await anonymous.get("/healthz"),
            await anonymous.get("/bots/"),  # 401
            await anonymous.get("/nowhere"),  # 404
            await anonymous.get("/admin/login"),
            await anonymous.get("/admin/statics/css/tabler.min.css"),
            await anonymous.get("/admin/bot/list"),  # → the login form
            await anonymous.post("/admin/login", headers={"Origin": "https://evil.example"}),
        ):
            check(response)
        assert (await anonymous.get("/nowhere")).status_code == 404
    for response in (
        await api.get("/bots/"),
        await api.post("/bots/", json={}),  # 422
        await api.get("/openapi.json"),
    ):
        check(response)
    for path in ("/docs", "/redoc"):
        check(await api.get(path), DOCS_POLICY)

    async with client_for(app) as console:
        await login(console, app.state.settings)
        for response in (
            await console.get("/admin/"),
            await console.get("/admin/tasks"),
            await console.get("/admin/statics/js/console.js"),
            await console.post("/admin/schedules/change", headers={"X-CSRF-Token": "wrong"}),
        ):
            check(response)
        script = await console.get("/admin/statics/js/console.js")
        assert script.status_code == 200 and "csrf_token" in script.text
