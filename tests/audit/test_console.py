"""The audit log of the console: every console route that accepts an unsafe method (found
in the mounted console, as tests/admin/test_csrf.py finds them) writes the events of what
it changed, naming the console session's operator and address — or is one of the few
that change nothing recorded (a preview, logging in and out, SQLAdmin's delete and import
that no view allows); a refused action writes none; the Audit log page lists and filters
them, API and console changes alike, and is behind the login."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.models import ActorKind, Post, PostStatus
from botmgr.worker import schedules
from tests.admin.conftest import client_for, login, seed
from tests.admin.test_csrf import unsafe_routes
from tests.audit.conftest import ADDRESS, Audited
from tests.harness.env import USER
from tests.harness.images import png

pytestmark = pytest.mark.timeout(120)
# Console routes that change nothing the log records: a preview renders, logging in and
# out changes the session only, and no view allows SQLAdmin's delete or import.
RECORDS_NOTHING = {
    ("POST", "/compose/preview"),
    ("POST", "/logout"),
    ("POST", "/login"),
    ("DELETE", "/{identity}/delete"),
    ("POST", "/{identity}/import"),
}
ACTION = re.compile(r'<tr data-event-id="\d+" data-action="([^"]+)">')


async def group_of(db: AsyncSession, rows: dict[str, Any], size: int) -> str:
    """``size`` queued posts of one fan-out group in the seeded channel."""
    group_id = f"g-{secrets.token_hex(6)}"
    later = datetime.now(UTC) + timedelta(days=1)
    for _ in range(size):
        db.add(
            Post(
                channel_id=rows["news"].id,
                binding_id=rows["active"].id,
                markdown="grouped",
                random_id=secrets.randbits(62),
                status=PostStatus.queued,
                task_id=f"t-{secrets.token_hex(8)}",
                group_id=group_id,
                send_at=later,
                not_before=later,
            )
        )
    await db.commit()
    return group_id


def requests_for(
    rows: dict[str, Any], token: str, group_id: str
) -> list[tuple[str, str, str, dict[str, Any], list[str]]]:
    """(method, route template, url, request keywords, actions it must leave), in order:
    ``{post}`` in a url is the post the previous request created."""
    bot, news, binding, sent = rows["bot"].id, rows["news"].id, rows["active"].id, rows["sent"].id
    change = "/schedules/change"
    return [
        (
            "POST",
            "/{identity}/create",
            "/bot/create",
            {"data": {"token": token, "alias": "made"}},
            ["bot.register"],
        ),
        (
            "POST",
            "/{identity}/edit/{pk:path}",
            f"/bot/edit/{bot}",
            {"data": {"alias": "renamed"}},
            ["bot.update"],
        ),
        (
            "POST",
            "/bot/action/check-token",
            f"/bot/action/check-token?pks={bot}",
            {},
            ["bot.check"],
        ),
        (
            "POST",
            "/binding/action/check-rights",
            f"/binding/action/check-rights?pks={binding}",
            {},
            ["channel.check"],
        ),
        (
            "POST",
            "/channel/action/collect-stats",
            f"/channel/action/collect-stats?pks={news}",
            {},
            ["stats.collect"],
        ),
        (
            "POST",
            "/channel/post/{pk:int}",
            f"/channel/post/{news}",
            {"data": {"message": "hi"}},
            ["post.create"],
        ),
        (
            "POST",
            "/scheduled/cancel",
            "/scheduled/cancel",
            {"data": {"post_id": "{post}"}},
            ["post.cancel"],
        ),
        (
            "POST",
            "/compose/submit",
            "/compose/submit",
            {"data": {"channel": str(rows["news"].tg_id), "message": "c"}},
            ["post.create"],
        ),
        ("POST", "/post/action/cancel", "/post/action/cancel?pks={post}", {}, ["post.cancel"]),
        (
            "POST",
            "/compose/media",
            "/compose/media",
            {"files": {"file": ("p.png", png(4, 4), "image/png")}},
            ["media.upload"],
        ),
        ("POST", "/compose/preview", "/compose/preview", {"data": {"message": "preview"}}, []),
        ("POST", "/post/action/pin", f"/post/action/pin?pks={sent}", {}, ["post.pin"]),
        ("POST", "/post/action/unpin", f"/post/action/unpin?pks={sent}", {}, ["post.unpin"]),
        (
            "POST",
            "/post/revise/{pk:int}",
            f"/post/revise/{sent}",
            {"data": {"message": "revised"}},
            ["post.edit"],
        ),
        (
            "POST",
            "/post/action/delete-sent",
            f"/post/action/delete-sent?pks={sent}",
            {},
            ["post.delete"],
        ),
        (
            "POST",
            "/post/group/{group_id}",
            f"/post/group/{group_id}",
            {"data": {"op": "delete"}},
            ["post.cancel"] * 2,
        ),
        (
            "POST",
            change,
            change,
            {"data": {"name": "collect-daily-stats", "op": "disable"}},
            ["schedule.change"],
        ),
        (
            "POST",
            change,
            change,
            {"data": {"name": "check-new-bindings", "op": "spec", "spec": "every 60"}},
            ["schedule.change"],
        ),
        (
            "POST",
            change,
            change,
            {"data": {"name": "check-new-bindings", "op": "run"}},
            ["schedule.run"],
        ),
        (
            "POST",
            "/channel/action/unbind",
            f"/channel/action/unbind?pks={news}",
            {},
            ["channel.unbind"],
        ),
        (
            "POST",
            "/webhooks/add",
            "/webhooks/add",
            {"data": {"url": "https://1.1.1.1/hook", "secret": "a-webhook-secret-0123"}},
            ["webhook.create"],
        ),
        (
            "POST",
            "/webhooks/replay",
            "/webhooks/replay",
            {"data": {"delivery_id": str(rows["delivery"].id)}},
            ["webhook.replay"],
        ),
        (
            "POST",
            "/webhooks/delete",
            "/webhooks/delete",
            {"data": {"webhook_id": str(rows["hook"].id)}},
            ["webhook.delete"],
        ),
        ("DELETE", "/{identity}/delete", f"/bot/delete?pks={bot}", {}, []),
        ("POST", "/{identity}/import", "/bot/import", {}, []),
        ("POST", "/logout", "/logout", {}, []),
    ]


async def test_every_console_change_is_recorded(
    audited: Audited, console: httpx.AsyncClient, db: AsyncSession
) -> None:
    app = audited.app
    schedules.ensure_defaults(app.state.celery, audited.settings)
    rows = await seed(db, audited.settings)
    group_id = await group_of(db, rows, 2)
    cases = requests_for(rows, audited.fake.add_bot(), group_id)
    covered = {(m, t) for m, t, _, _, _ in cases} | {("POST", "/login")}
    assert covered == unsafe_routes(app)  # a route added later needs a case here

    post: int | None = None
    for method, template, url, kwargs, actions in cases:
        url = url.replace("{post}", str(post))
        if "data" in kwargs:
            kwargs = {
                **kwargs,
                "data": {k: v.replace("{post}", str(post)) for k, v in kwargs["data"].items()},
            }
        before = len(await audited.events())
        response = await console.request(method, "/admin" + url, **kwargs)
        assert response.status_code < 500, (url, response.status_code)
        new = (await audited.events())[before:]
        assert [e.action for e in new] == actions, (template, response.text[:300])
        for event in new:
            assert (event.actor_kind, event.actor, event.address) == (
                ActorKind.console,
                USER,
                ADDRESS,
            )
            assert event.request_id is None  # no nginx in front here
        created = [e for e in new if e.action == "post.create"]
        post = int(created[0].object_id) if created and created[0].object_id else post
        if (method, template) in RECORDS_NOTHING:
            continue
        assert new, template

    async with client_for(app) as again:  # the login form: the session, nothing else
        before = len(await audited.events())
        await login(again, audited.settings)
        assert len(await audited.events()) == before

    events = await audited.events()
    schedule = [e for e in events if e.object_type == "schedule"]
    assert [(e.object_id, e.details["op"]) for e in schedule] == [
        ("collect-daily-stats", "disable"),
        ("check-new-bindings", "spec"),
        ("check-new-bindings", "run"),
    ]
    assert schedule[1].details["now"] == "now every 60"
    assert schedule[2].details["task_id"]


async def test_refused_console_actions_leave_no_event(
    audited: Audited, console: httpx.AsyncClient, db: AsyncSession
) -> None:
    rows = await seed(db, audited.settings)
    revoked = audited.fake.add_bot()
    audited.fake.revoke(revoked)
    sent, sport = rows["sent"].id, rows["sport"].id
    attempts = [
        ("/bot/create", {"data": {"token": revoked}}),  # Telegram refuses the token
        (f"/post/action/cancel?pks={sent}", {}),  # already sent: refused, not deleted
        (f"/post/action/pin?pks={rows['failed'].id}", {}),  # never sent
        (f"/channel/post/{sport}", {"data": {"message": "x"}}),  # its binding is invalid
        ("/post/group/no-such-group", {"data": {"op": "delete"}}),
        ("/schedules/change", {"data": {"name": "no-such-job", "op": "disable"}}),
        ("/compose/media", {"files": {"file": ("e.txt", b"", "text/plain")}}),
    ]
    for url, kwargs in attempts:
        response = await console.post("/admin" + url, **kwargs)
        assert response.status_code < 500, (url, response.status_code)
    assert await audited.events() == []
    tasks = (await console.get("/admin/tasks")).text
    assert "is already sent" in tasks  # the refusals were shown, not silently dropped


async def test_the_audit_page_lists_and_filters(
    audited: Audited, console: httpx.AsyncClient, rest: httpx.AsyncClient, db: AsyncSession
) -> None:
    rows = await seed(db, audited.settings)
    token = audited.fake.add_bot()
    response = await rest.post("/bots/", json={"token": token})  # through the API
    assert response.status_code == 200
    news = rows["news"].id
    posted = await console.post(f"/admin/channel/post/{news}", data={"message": "hello"})
    assert posted.status_code == 302
    await console.post(f"/admin/channel/action/collect-stats?pks={news}")

    # Both actors in one log, at GET /audit as on the page.
    listed = (await rest.get("/audit")).json()["events"]
    assert [(e["action"], e["actor_kind"]) for e in listed] == [
        ("stats.collect", "console"),
        ("post.create", "console"),
        ("bot.register", "api"),
    ]
    post_id = listed[1]["object_id"]

    async def shown(**params: str) -> list[str]:
        page = await console.get("/admin/audit", params=params)
        assert page.status_code == 200, page.text
        return ACTION.findall(page.text)

    assert await shown() == ["stats.collect", "post.create", "bot.register"]
    page = (await console.get("/admin/audit")).text
    assert ADDRESS in page and USER in page and "3 events" in page
    assert f"/admin/post/details/{post_id}" in page  # the object links to its page
    assert f"channel/overview/{news}" in page
    assert await shown(actor_kind="console") == ["stats.collect", "post.create"]
    assert await shown(actor_kind="api") == ["bot.register"]
    assert await shown(action="post.*") == ["post.create"]
    assert await shown(object_type="post", object_id=post_id) == ["post.create"]
    assert await shown(object_type="channel", object_id=str(news)) == ["stats.collect"]
    assert await shown(actor="nobody") == []
    today = datetime.now(UTC).date()
    span = {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=1))}
    assert len(await shown(**span)) == 3
    assert await shown(**{"from": str(today + timedelta(days=2))}) == []

    bad = await console.get("/admin/audit", params={"from": "yesterday"})
    assert bad.status_code == 422 and "is not a day" in bad.text
    assert 'value="yesterday"' in bad.text  # the form keeps what was typed

    async with client_for(audited.app) as anonymous:
        response = await anonymous.get("/admin/audit")
        assert response.status_code == 302 and response.headers["location"].endswith("/login")
