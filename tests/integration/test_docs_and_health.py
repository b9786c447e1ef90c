"""/docs, /redoc and /openapi.json behind the API's credentials, served from files in an
installed package and referencing no other host; /healthz without a database or Redis
round trip per hit; /readyz authenticated, probing every time, migrations included."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from botmgr import health
from botmgr.app import create_app
from tests.harness.client import BASE_URL
from tests.harness.env import USER, settings_from

pytestmark = pytest.mark.timeout(60)
Served = tuple[FastAPI, httpx.AsyncClient]
PAGES = ("/docs", "/redoc")
PRIVATE = (
    *PAGES,
    "/openapi.json",
    "/docs/assets/swagger-ui-bundle.js",
    "/docs/assets/swagger-ui.css",
    "/docs/assets/swagger-init.js",
    "/docs/assets/redoc.standalone.js",
    "/docs/assets/favicon.png",
    "/readyz",
)


class References(HTMLParser):
    """Every URL a page makes the browser load or follow."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and name in ("src", "href", "action", "data-spec", "spec-url"):
                self.urls.append(value)


@pytest.fixture
async def served(service_env: dict[str, str]) -> AsyncIterator[Served]:
    """The app, its lifespan running, and a client of it (anonymous: each request says)."""
    app = create_app(settings_from(service_env))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            yield app, http


def operator(app: FastAPI) -> tuple[str, str]:
    return USER, app.state.settings.auth_password.get_secret_value()


@pytest.mark.parametrize("path", PRIVATE)
async def test_docs_need_credentials(served: Served, path: str) -> None:
    app, http = served
    for auth in (None, (USER, "wrong-password")):
        response = await http.get(path, auth=auth)
        assert response.status_code == 401, (path, auth)
        assert response.headers["www-authenticate"].startswith("Basic")
    assert (await http.get(path, auth=operator(app))).status_code == 200


async def test_openapi_is_the_apps(served: Served) -> None:
    app, http = served
    spec = (await http.get("/openapi.json", auth=operator(app))).json()
    assert {"/bots/", "/channels/", "/messages", "/healthz", "/readyz"} <= set(spec["paths"])
    assert not {p for p in spec["paths"] if p.startswith(("/docs", "/redoc", "/openapi"))}


@pytest.mark.parametrize("page", PAGES)
async def test_doc_pages_reference_no_other_host(served: Served, page: str) -> None:
    app, http = served
    response = await http.get(page, auth=operator(app))
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert not re.search(r"https?:|//", html), "an absolute or scheme-relative URL"
    parser = References()
    parser.feed(html)
    scripts = [u for u in parser.urls if u.endswith(".js")]
    assert scripts and "/openapi.json" in parser.urls
    for url in parser.urls:
        absolute = urljoin(f"{BASE_URL}{page}", url)
        assert urlsplit(absolute).netloc == urlsplit(BASE_URL).netloc, url
        fetched = await http.get(absolute, auth=operator(app))
        assert fetched.status_code == 200 and fetched.content, url


async def test_swagger_ui_asks_no_validator(served: Served) -> None:
    app, http = served
    # Left to its default, Swagger UI shows a badge loaded from validator.swagger.io.
    init = (await http.get("/docs/assets/swagger-init.js", auth=operator(app))).text
    assert "validatorUrl: null" in init


async def test_redoc_loads_no_logo_from_its_cdn(served: Served) -> None:
    app, http = served
    bundle = await http.get("/docs/assets/redoc.standalone.js", auth=operator(app))
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert len(bundle.content) > 500_000 and b"cdn.redoc.ly" not in bundle.content
    assert b"redocly logo" in bundle.content  # the same ReDoc, one URL changed


@pytest.mark.parametrize("name", ["core.py", "..%2Fpy.typed", "nothing.js"])
async def test_only_the_shipped_assets_are_served(served: Served, name: str) -> None:
    app, http = served
    response = await http.get(f"/docs/assets/{name}", auth=operator(app))
    assert response.status_code == 404


class RoundTrips:
    """Statements the app's engine sent and pings its Redis client made."""

    def __init__(self, app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
        self.statements = 0
        self.pings = 0
        event.listen(app.state.engine.sync_engine, "before_cursor_execute", self._statement)
        ping = app.state.redis.ping

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.pings += 1
            return await ping(*args, **kwargs)

        monkeypatch.setattr(app.state.redis, "ping", counted)

    def _statement(self, *_: Any) -> None:
        self.statements += 1


async def test_healthz_makes_no_round_trip_per_hit(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, http = served
    trips = RoundTrips(app, monkeypatch)
    answers = await asyncio.gather(*(http.get("/healthz") for _ in range(50)))
    answers += [await http.get("/healthz") for _ in range(50)]
    assert {a.status_code for a in answers} == {200}
    assert all(a.json() == {"status": "ok", "database": "ok", "redis": "ok"} for a in answers)
    assert (trips.statements, trips.pings) == (1, 1)  # one probe for 100 hits
    app.state.health.ttl = 0.05  # once the answer is older than its TTL: probed again
    await asyncio.sleep(0.1)
    assert (await http.get("/healthz")).status_code == 200
    assert (trips.statements, trips.pings) == (2, 2)


async def test_readyz_probes_every_time_with_credentials(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, http = served
    trips = RoundTrips(app, monkeypatch)
    assert (await http.get("/readyz")).status_code == 401
    assert (trips.statements, trips.pings) == (0, 0)  # refused before any probe
    for hit in range(1, 4):
        response = await http.get("/readyz", auth=operator(app))
        assert response.status_code == 200, response.text
        assert response.json() == {
            "status": "ok",
            "database": "ok",
            "redis": "ok",
            "migrations": "ok",
        }
        assert trips.pings == hit and trips.statements == 2 * hit  # SELECT 1, the version


async def test_readyz_says_when_the_database_is_behind(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, http = served
    monkeypatch.setattr(health, "code_heads", lambda: frozenset({"f00dfeed"}))
    response = await http.get("/readyz", auth=operator(app))
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error" and body["database"] == "ok"
    assert body["migrations"].startswith("behind") and "f00dfeed" in body["migrations"]
