"""No console URL answers without a session, except the login form and the one stylesheet
it links; logging in takes the API's credentials."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
import sqladmin
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from admin.auth import PUBLIC_PATHS
from botmgr.app import create_app
from tests.admin.conftest import BASE, client_for, login, seed
from tests.harness.env import USER, settings_from

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("clean_db")]

STATICS = Path(sqladmin.__file__).parent / "statics"
ASSET = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=["']([^"']+)["']""")
LINK = re.compile(r"""(?:href|src|action|data-url)=["']([^"'#]+)["']""")
SIDE_EFFECTS = (
    "/action/",
    "/logout",
    "/schedules/change",
    "/channel/post/",
    "/compose/submit",
    "/scheduled/cancel",
    "/post/group/",
    "/webhooks/",  # add, delete, replay (the page itself is /webhooks)
)


def links(page: str, url: str) -> set[str]:
    found = set()
    for raw in LINK.findall(page):
        absolute = urljoin(url, raw.replace("&amp;", "&"))
        parts = urlsplit(absolute)
        if parts.netloc == "botmgr.test" and parts.path.startswith("/admin"):
            found.add(parts.path + (f"?{parts.query}" if parts.query else ""))
    return found


def shape(url: str) -> str:
    # Sorting, paging and filter links combine without end: one URL per set of parameters.
    path, _, query = url.partition("?")
    return path + "?" + ",".join(sorted({p.split("=")[0] for p in query.split("&") if p}))


async def crawl(console: httpx.AsyncClient) -> set[str]:
    """Every console URL reachable by following links from the index, logged in (one per
    shape); each must answer 200. Side-effect links are collected, not followed."""
    shapes: set[str] = set()
    seen: set[str] = set()
    queue = ["/admin/"]
    while queue:
        path = queue.pop()
        if shape(path) in shapes:
            continue
        shapes.add(shape(path))
        seen.add(path)
        if any(marker in path for marker in SIDE_EFFECTS) or "/statics/" in path:
            continue
        response = await console.get(path)
        assert response.status_code == 200, (path, response.status_code)
        for asset in ASSET.findall(response.text):  # served by the console itself: no CDN
            assert urlsplit(urljoin(BASE + path, asset)).netloc == "botmgr.test", (path, asset)
        queue.extend(links(response.text, BASE + path) - seen)
    return seen


def enumerated(app: FastAPI, ids: dict[str, int]) -> set[str]:
    """The console's routes with real values for their parameters."""
    mount = next(r for r in app.routes if getattr(r, "path", None) == "/admin")
    paths = {f"/admin/statics/{p.relative_to(STATICS)}" for p in STATICS.rglob("*") if p.is_file()}
    for route in mount.app.routes:  # type: ignore[attr-defined]
        template = getattr(route, "path", "")
        if template == "/statics":
            continue
        for identity, pk in ids.items():
            paths.add(
                "/admin"
                + template.replace("{identity}", identity)
                .replace("{pk:path}", str(pk))
                .replace("{pk:int}", str(pk))
                .replace("{export_type}", "csv")
                .replace("{column_name}", "id")
            )
    return paths


async def test_nothing_answers_without_a_session(
    console: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    console_app: FastAPI,
    db: AsyncSession,
) -> None:
    rows = await seed(db, console_app.state.settings)
    ids = {
        "bot": rows["bot"].id,
        "channel": rows["news"].id,
        "binding": rows["active"].id,
        "post": rows["sent"].id,
        "channel-stats": 1,
    }
    urls = await crawl(console) | enumerated(console_app, ids)
    urls |= {
        "/admin",
        "/admin/tasks",
        "/admin/schedules",
        "/admin/nonexistent",
        f"/admin/binding/action/check-rights?pks={rows['active'].id}",
    }
    assert len(urls) > 60  # the crawl reached lists, details, filters, statics
    public = {f"/admin{p}" for p in PUBLIC_PATHS}
    for url in sorted(urls - public):
        for method in ("GET", "POST", "DELETE"):
            response = await anonymous.request(method, url)
            status = response.status_code
            assert status in (302, 307, 401, 404, 405), (method, url, status)
            if status in (302, 307):  # to the login form, or /admin → /admin/
                assert response.headers["location"].endswith(("/admin/login", "/admin/")), url
            assert rows["bot"].username not in response.text

    # The login form links exactly what answers without a session.
    form = await anonymous.get("/admin/login")
    assert form.status_code == 200
    assert {u for u in links(form.text, BASE + "/admin/login")} <= public
    for path in public:
        assert (await anonymous.get(path)).status_code == 200, path


async def test_login_checks_the_api_credentials(console_app: FastAPI) -> None:
    settings = console_app.state.settings
    password = settings.auth_password.get_secret_value()
    async with client_for(console_app) as client:
        for username, secret in ((USER, "wrong"), ("someone", password), ("", "")):
            response = await client.post(
                "/admin/login", data={"username": username, "password": secret}
            )
            assert response.status_code == 400
            assert (await client.get("/admin/bot/list")).status_code == 302
        await login(client, settings)
        assert (await client.get("/admin/bot/list")).status_code == 200
        cookie = client.cookies["botmgr_console"]
        assert password not in cookie

        # A forged or altered cookie is refused.
        client.cookies.set(
            "botmgr_console", cookie[:-4] + "AAAA", domain="botmgr.test", path="/admin"
        )
        assert (await client.get("/admin/bot/list")).status_code == 302

        client.cookies.set("botmgr_console", cookie, domain="botmgr.test", path="/admin")
        # Logging out is a POST: GET only asks.
        asked = await client.get("/admin/logout")
        assert asked.status_code == 200 and 'id="confirm-form"' in asked.text
        assert (await client.get("/admin/bot/list")).status_code == 200
        assert (await client.post("/admin/logout")).status_code == 302
        assert (await client.get("/admin/bot/list")).status_code == 302


async def test_cookie_flags_and_password_change(tg_env: dict[str, str]) -> None:
    app = create_app(settings_from(tg_env))
    async with app.router.lifespan_context(app), client_for(app) as client:
        response = await client.post(
            "/admin/login",
            data={
                "username": USER,
                "password": app.state.settings.auth_password.get_secret_value(),
            },
        )
        header = response.headers["set-cookie"].lower()
        assert "samesite=strict" in header and "httponly" in header and "path=/admin" in header
        cookie = client.cookies["botmgr_console"]

    # Same secret key, new password: sessions opened with the old one are over.
    changed = create_app(settings_from({**tg_env, "BOTMGR_AUTH_PASSWORD": "another-pass-123"}))
    async with changed.router.lifespan_context(changed), client_for(changed) as client:
        client.cookies.set("botmgr_console", cookie, domain="botmgr.test", path="/admin")
        assert (await client.get("/admin/bot/list")).status_code == 302
