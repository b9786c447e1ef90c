"""Cross-site request forgery against the console (admin/csrf.py): every route that
changes state, found in the app itself, refuses another origin, another site, a missing
token and another session's token — with nothing changed anywhere (database, schedules,
the operator's outcomes, the session) — and GET on it changes nothing; the console's own
forms, posting the token field from this origin, work."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.models import Base, BindingStatus
from botmgr.worker import schedules
from tests.admin.conftest import BASE, client_for, login, seed
from tests.harness.env import USER

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("worker", "clean_db")]

HOSTILE = ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"})
SAME_ORIGIN = {"Origin": BASE, "Sec-Fetch-Site": "same-origin"}
FORGED_HOOK = "https://1.1.1.1/forged"  # public: a forged add would be stored


def unsafe_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every console route that accepts an unsafe method."""
    mount = next(r for r in app.routes if getattr(r, "path", None) == "/admin")
    found = set()
    for route in mount.app.routes:  # type: ignore[attr-defined]
        for method in getattr(route, "methods", None) or ():
            if method in ("POST", "PUT", "PATCH", "DELETE"):
                found.add((method, route.path))
    return found


def requests_for(rows: dict[str, Any]) -> list[tuple[str, str, str, dict[str, str]]]:
    """One real request per unsafe console route: (method, template, url, form)."""
    bot, news, binding = rows["bot"].id, rows["news"].id, rows["active"].id
    news_tg, sent = str(rows["news"].tg_id), rows["sent"].id
    hook, delivery = rows["hook"].id, rows["delivery"].id
    change = "/schedules/change"
    return [
        ("POST", "/binding/action/check-rights", f"/binding/action/check-rights?pks={binding}", {}),
        ("POST", "/channel/action/collect-stats", f"/channel/action/collect-stats?pks={news}", {}),
        ("POST", "/channel/action/unbind", f"/channel/action/unbind?pks={news}", {}),
        ("POST", "/bot/action/check-token", f"/bot/action/check-token?pks={bot}", {}),
        ("POST", "/channel/post/{pk:int}", f"/channel/post/{news}", {"message": "forged"}),
        ("POST", change, change, {"name": "collect-daily-stats", "op": "disable"}),
        ("POST", change, change, {"name": "check-new-bindings", "op": "run"}),
        ("POST", change, change, {"name": "check-new-bindings", "op": "spec", "spec": "every 60"}),
        ("POST", "/{identity}/create", "/bot/create", {"token": rows["token"], "alias": "forged"}),
        ("POST", "/{identity}/edit/{pk:path}", f"/bot/edit/{bot}", {"alias": "forged"}),
        ("DELETE", "/{identity}/delete", f"/bot/delete?pks={bot}", {}),
        ("POST", "/{identity}/import", "/bot/import", {}),
        ("POST", "/compose/submit", "/compose/submit", {"channel": news_tg, "message": "forged"}),
        ("POST", "/compose/preview", "/compose/preview", {"message": "forged"}),
        ("POST", "/compose/media", "/compose/media", {"kind": "document"}),
        ("POST", "/scheduled/cancel", "/scheduled/cancel", {"post_id": str(sent)}),
        ("POST", "/webhooks/add", "/webhooks/add", {"url": FORGED_HOOK, "secret": "f" * 20}),
        ("POST", "/webhooks/replay", "/webhooks/replay", {"delivery_id": str(delivery)}),
        ("POST", "/webhooks/delete", "/webhooks/delete", {"webhook_id": str(hook)}),
        ("POST", "/post/action/cancel", f"/post/action/cancel?pks={sent}", {}),
        ("POST", "/post/action/delete-sent", f"/post/action/delete-sent?pks={sent}", {}),
        ("POST", "/post/action/pin", f"/post/action/pin?pks={sent}", {}),
        ("POST", "/post/action/unpin", f"/post/action/unpin?pks={sent}", {}),
        ("POST", "/post/revise/{pk:int}", f"/post/revise/{sent}", {"message": "forged"}),
        ("POST", "/post/group/{group_id}", "/post/group/g-forged", {"op": "delete"}),
        ("POST", "/logout", "/logout", {}),
        ("POST", "/login", "/login", {"username": USER, "password": rows["password"]}),
    ]  # fmt: skip


async def snapshot(db: AsyncSession, console: httpx.AsyncClient, app: FastAPI) -> Any:
    """Everything a console action can change: every table's rows, the schedules in Redis,
    and the outcomes on this session's Tasks page (which also shows it is logged in)."""
    tables = {}
    async with db.bind.connect() as conn:  # its own connection: the test's rows stay loaded
        for table in Base.metadata.sorted_tables:
            rows = (await conn.execute(text(f"SELECT * FROM {table.name}"))).all()
            tables[table.name] = sorted(map(repr, rows))
    plans = sorted((s.name, s.spec, s.enabled) for s in schedules.list_schedules(app.state.celery))
    tasks = await console.get("/admin/tasks")
    assert tasks.status_code == 200, "the session was logged out"
    outcomes = re.search(r'<table[^>]*id="outcomes".*?</table>', tasks.text, re.S)
    assert outcomes
    return tables, plans, outcomes.group(0)


@pytest.fixture
async def world(console_app: FastAPI, db: AsyncSession) -> dict[str, Any]:
    schedules.ensure_defaults(console_app.state.celery, console_app.state.settings)
    rows = await seed(db, console_app.state.settings)
    rows["password"] = console_app.state.settings.auth_password.get_secret_value()
    return rows


async def test_every_unsafe_route_is_covered(console_app: FastAPI, world: dict) -> None:
    # A route added later without a case below fails here, not silently.
    covered = {(method, template) for method, template, _, _ in requests_for(world)}
    assert unsafe_routes(console_app) == covered


async def test_cross_origin_and_cross_site_refused(
    console: httpx.AsyncClient, console_app: FastAPI, world: dict, db: AsyncSession
) -> None:
    before = await snapshot(db, console, console_app)
    for method, _, url, form in requests_for(world):
        for hostile in HOSTILE:  # the session's own token: only the origin is wrong
            response = await console.request(method, "/admin" + url, data=form, headers=hostile)
            assert response.status_code == 403, (method, url, hostile, response.status_code)
    assert await snapshot(db, console, console_app) == before


async def test_missing_or_foreign_token_refused(
    console: httpx.AsyncClient, console_app: FastAPI, world: dict, db: AsyncSession
) -> None:
    async with client_for(console_app) as other:
        foreign = await login(other, console_app.state.settings)
    own = console.headers.pop("X-CSRF-Token")
    assert foreign != own
    before = await snapshot(db, console, console_app)
    for method, _, url, form in requests_for(world):
        if url == "/login":  # no session yet: the origin check is the login form's guard
            continue
        attempts: list[tuple[dict[str, str], dict[str, str]]] = [
            (form, {}),  # no token
            ({**form, "csrf_token": foreign}, {}),  # another session's, as a form field
            (form, {"X-CSRF-Token": foreign}),  # … and as the header
            ({**form, "csrf_token": ""}, {}),
        ]
        for data, headers in attempts:
            response = await console.request(
                method, "/admin" + url, data=data, headers={**SAME_ORIGIN, **headers}
            )
            assert response.status_code == 403, (method, url, headers, response.status_code)
        # A body that is not a form (JSON) carries no token either.
        response = await console.request(method, "/admin" + url, json=form, headers=SAME_ORIGIN)
        assert response.status_code == 403, (method, url, "json")
    assert await snapshot(db, console, console_app) == before


async def test_get_on_an_action_url_changes_nothing(
    console: httpx.AsyncClient, console_app: FastAPI, world: dict, db: AsyncSession
) -> None:
    before = await snapshot(db, console, console_app)
    for _, _, url, form in requests_for(world):
        response = await console.get("/admin" + url, params=form)
        assert response.status_code in (200, 405), (url, response.status_code)
        if "/action/" in url or url == "/logout":  # a page that asks, with a POST form
            assert 'method="post"' in response.text and 'id="confirm-submit"' in response.text
            assert 'name="csrf_token"' in response.text
    assert await snapshot(db, console, console_app) == before


async def test_the_consoles_own_forms_work(
    console: httpx.AsyncClient, console_app: FastAPI, world: dict, db: AsyncSession
) -> None:
    """Same origin, the token as the hidden field the pages render (no header)."""
    console.headers.pop("X-CSRF-Token")
    overview = (await console.get(f"/admin/channel/overview/{world['news'].id}")).text
    field = re.search(r'name="csrf_token" value="([^"]+)"', overview)
    assert field
    token = field.group(1)

    async def post(url: str, /, ok: tuple[int, ...] = (302, 303), **form: str) -> httpx.Response:
        response = await console.post(
            "/admin" + url, data={**form, "csrf_token": token}, headers=SAME_ORIGIN
        )
        assert response.status_code in ok, (url, response.status_code, response.text)
        return response

    by_url = {url: form for method, _, url, form in requests_for(world) if method == "POST"}
    for url in by_url:
        if "/action/" in url or url.startswith(
            ("/channel/post/", "/scheduled/", "/post/", "/webhooks/")
        ):
            await post(url, **by_url[url])
    # The composer's form went through the guard: the service refused it (the channel was
    # just unbound), and the form is shown again with why.
    refused = await post("/compose/submit", ok=(409,), **by_url["/compose/submit"])
    assert "no active binding" in refused.text
    tasks = (await console.get("/admin/tasks")).text
    for label in ("check rights of binding", "collect stats of channel", "check token of bot"):
        assert label in tasks
    assert "binding is now inactive" in tasks  # unbind ran
    assert "post to " in tasks
    assert f"post {world['sent'].id} is already sent: delete it instead" in tasks  # cancel
    assert "edit post" in tasks and "group not found" in tasks
    assert f"replay webhook delivery {world['delivery'].id}" in tasks and "sent again now" in tasks
    hooks = (await console.get("/admin/webhooks")).text
    assert FORGED_HOOK in hooks and "https://1.1.1.1/seed" not in hooks  # add, delete
    assert "seed-secret" not in hooks and "f" * 20 not in hooks  # the secrets are never shown
    await db.refresh(world["active"])
    assert world["active"].status == BindingStatus.inactive

    await post("/schedules/change", name="collect-daily-stats", op="disable")
    plans = {s.name: s for s in schedules.list_schedules(console_app.state.celery)}
    assert not plans["collect-daily-stats"].enabled

    await post(f"/bot/edit/{world['bot'].id}", alias="renamed")
    await db.refresh(world["bot"])
    assert world["bot"].alias == "renamed"

    await post("/logout")
    assert (await console.get("/admin/tasks")).status_code == 302  # logged out


async def test_login_form_refuses_other_origins(console_app: FastAPI, world: dict) -> None:
    form = {"username": USER, "password": world["password"]}
    for hostile in HOSTILE:
        async with client_for(console_app) as client:
            response = await client.post("/admin/login", data=form, headers=hostile)
            assert response.status_code == 403
            assert "botmgr_console" not in client.cookies
            assert (await client.get("/admin/tasks")).status_code == 302
    async with client_for(console_app) as client:
        response = await client.post("/admin/login", data=form, headers=SAME_ORIGIN)
        assert response.status_code == 302 and "botmgr_console" in client.cookies
