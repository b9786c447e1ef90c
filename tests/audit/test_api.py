"""The audit log of the API: every route that changes state (found in the app itself, so
a route added later without an event fails here) writes its events in the request's own
transaction, naming the operator, the client's address and the request id; a refused or
rolled-back change writes none; GET /audit lists and filters them behind credentials."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from botmgr.audit.context import NOT_SCHEDULED
from botmgr.models import (
    ActorKind,
    Channel,
    DeliveryStatus,
    Post,
    PostStatus,
    WebhookDelivery,
)
from tests.audit.conftest import ADDRESS, Audited
from tests.harness.client import BASE_URL, operator_client
from tests.harness.env import USER
from tests.harness.images import png

pytestmark = pytest.mark.timeout(120)
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def unsafe_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every API route that accepts an unsafe method (the
    console's, under its mount, are tests/audit/test_console.py's)."""
    return {
        (method, route.path)
        for route in iter_route_contexts(app.routes)
        for method in route.methods or ()
        if method in UNSAFE
    }


def new_tg_id() -> int:
    return secrets.randbelow(10**9) + 10**9


async def mark_sent(audited: Audited, *post_ids: int) -> None:
    """As if the worker had sent them (no worker runs here)."""
    async with AsyncSession(audited.engine) as session:
        await session.execute(
            update(Post)
            .where(Post.id.in_(post_ids))
            .values(status=PostStatus.sent, message_id=Post.id, sent_at=datetime.now(UTC))
        )
        await session.commit()


@dataclass
class Case:
    """One request per unsafe route, and the actions it must leave in the log."""

    method: str
    template: str
    send: Callable[[], Awaitable[httpx.Response]]
    actions: list[str]


def ok(response: httpx.Response) -> httpx.Response:
    assert response.status_code < 300, (response.request.url, response.text)
    return response


async def test_every_unsafe_route_writes_its_events(
    audited: Audited, rest: httpx.AsyncClient
) -> None:
    fake, world = audited.fake, dict[str, Any]()  # ids made by the cases, for later ones
    token = fake.add_bot()
    news, sport, extra = new_tg_id(), new_tg_id(), new_tg_id()

    async def register() -> httpx.Response:
        response = ok(await rest.post("/bots/", json={"token": token, "alias": "main"}))
        world["bot"] = response.json()["data"]["id"]
        return response

    async def bind(tg_id: int) -> httpx.Response:
        return await rest.post("/channels/", json={"channel": tg_id, "bot_id": world["bot"]})

    async def upload() -> httpx.Response:
        response = ok(await rest.post("/media", files={"file": ("a.png", png(8, 8), "image/png")}))
        world["media"] = response.json()["media_id"]
        return response

    async def post_one() -> httpx.Response:
        response = ok(await rest.post("/messages", json={"channel_id": news, "message": "one"}))
        world["post"] = response.json()["post_id"]
        return response

    async def fan_out(key: str) -> httpx.Response:
        body = {"channel_ids": [news, sport], "message": "both"}
        response = ok(await rest.post("/messages", json=body))
        world[key] = response.json()["group_id"]
        world[key + "_posts"] = response.json()["post_id"]
        return response

    async def group_sent(method: str, suffix: str = "") -> httpx.Response:
        """A request on a group of sent posts (made first, once)."""
        if "sent_group" not in world:
            await fan_out("sent_group")
            await mark_sent(audited, *world["sent_group_posts"])
        return await rest.request(method, f"/messages/groups/{world['sent_group']}{suffix}")

    async def sent(method: str, suffix: str = "", **kw: Any) -> httpx.Response:
        """A request on a sent post (made first, once)."""
        if "sent" not in world:
            body = {"channel_id": news, "message": "s"}
            world["sent"] = ok(await rest.post("/messages", json=body)).json()["post_id"]
            await mark_sent(audited, world["sent"])
        return await rest.request(method, f"/messages/{world['sent']}{suffix}", **kw)

    async def hook() -> httpx.Response:
        body = {"url": "https://1.1.1.1/hook", "secret": "a-webhook-secret-0123"}
        response = ok(await rest.post("/webhooks", json=body))
        world["hook"] = response.json()["id"]
        return response

    async def replay() -> httpx.Response:
        """A delivery given up on (no worker runs here to make one), tried again."""
        async with AsyncSession(audited.engine) as session:
            row = WebhookDelivery(
                endpoint_id=world["hook"],
                event_id=str(uuid.uuid4()),
                event="post.sent",
                data={},
                status=DeliveryStatus.failed,
                next_attempt_at=datetime.now(UTC),
            )
            session.add(row)
            await session.flush()
            delivery = row.id
            await session.commit()
        return await rest.post(f"/webhooks/deliveries/{delivery}/replay")

    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    g, p = "/messages/groups/{group_id}", "/messages/{post_id}"
    cases = [
        Case("POST", "/bots/", register, ["bot.register"]),
        Case(
            "PATCH",
            "/bots/{bot_id}",
            lambda: rest.patch(f"/bots/{world['bot']}", json={"alias": "x", "token": token}),
            ["bot.update"],
        ),
        Case("POST", "/webhooks", hook, ["webhook.create"]),
        Case(
            "PATCH",
            "/webhooks/{webhook_id}",
            lambda: rest.patch(f"/webhooks/{world['hook']}", json={"events": ["post.sent"]}),
            ["webhook.update"],
        ),
        Case("POST", "/webhooks/deliveries/{delivery_id}/replay", replay, ["webhook.replay"]),
        Case(
            "DELETE",
            "/webhooks/{webhook_id}",
            lambda: rest.delete(f"/webhooks/{world['hook']}"),
            ["webhook.delete"],
        ),
        Case("POST", "/channels/", lambda: bind(news), ["channel.bind"]),
        Case("POST", "/media", upload, ["media.upload"]),
        Case("POST", "/messages", post_one, ["post.create"]),
        Case(
            "PATCH",
            p,
            lambda: rest.patch(f"/messages/{world['post']}", json={"send_at": later}),
            ["post.reschedule"],
        ),
        Case(
            "POST",
            "/channels/{tg_id}/check",
            lambda: rest.post(f"/channels/{news}/check"),
            ["channel.check"],
        ),
        Case("POST", "/channels/", lambda: bind(sport), ["channel.bind"]),
        Case("POST", "/messages", lambda: fan_out("group"), ["post.create"] * 2),
        Case(
            "PATCH",
            g,
            lambda: rest.patch(f"/messages/groups/{world['group']}", json={"message": "edited"}),
            ["post.edit"] * 2,
        ),
        Case(
            "DELETE",
            g,
            lambda: rest.delete(f"/messages/groups/{world['group']}"),
            ["post.cancel"] * 2,
        ),
        Case("POST", g + "/pin", lambda: group_sent("POST", "/pin"), ["post.pin"] * 2),
        Case("DELETE", g + "/pin", lambda: group_sent("DELETE", "/pin"), ["post.unpin"] * 2),
        Case("DELETE", p, lambda: rest.delete(f"/messages/{world['post']}"), ["post.cancel"]),
        Case("POST", p + "/pin", lambda: sent("POST", "/pin"), ["post.pin"]),
        Case("DELETE", p + "/pin", lambda: sent("DELETE", "/pin"), ["post.unpin"]),
        Case("PATCH", p, lambda: sent("PATCH", json={"message": "fixed"}), ["post.edit"]),
        Case("DELETE", p, lambda: sent("DELETE"), ["post.delete"]),
        Case("POST", "/channels/", lambda: bind(extra), ["channel.bind"]),
        Case(
            "DELETE",
            "/channels/{tg_id}",
            lambda: rest.delete(f"/channels/{extra}"),
            ["channel.unbind"],
        ),
        Case(
            "DELETE", "/bots/{bot_id}", lambda: rest.delete(f"/bots/{world['bot']}"), ["bot.delete"]
        ),
    ]
    # A route added later without a case here fails now, not silently.
    assert {(c.method, c.template) for c in cases} == unsafe_routes(audited.app)

    expected: list[str] = []
    for case in cases:
        before = len(await audited.events())
        ok(await case.send())
        new = (await audited.events())[before:]
        assert [e.action for e in new][-len(case.actions) :] == case.actions, case.template
        for event in new:
            assert (event.actor_kind, event.actor, event.address) == (
                ActorKind.api,
                USER,
                ADDRESS,
            ), (case.template, event.action)
        expected += [e.action for e in new]

    # GET /audit lists every change the test made, newest first.
    listed = ok(await rest.get("/audit", params={"limit": 500})).json()
    assert listed["total"] == len(expected)
    assert [e["action"] for e in reversed(listed["events"])] == expected
    assert {(e["actor_kind"], e["actor"], e["address"]) for e in listed["events"]} == {
        ("api", USER, ADDRESS)
    }
    posts = [e for e in listed["events"] if e["object_type"] == "post"]
    assert all(isinstance(e["details"]["task_id"], str | None) for e in posts)
    register_event = listed["events"][-1]
    assert register_event["object_id"] == str(world["bot"])
    assert register_event["details"]["new"] is True


async def test_refused_and_rolled_back_changes_leave_no_event(
    audited: Audited, rest: httpx.AsyncClient
) -> None:
    token = audited.fake.add_bot()
    bot = ok(await rest.post("/bots/", json={"token": token})).json()["data"]["id"]
    tg_id = new_tg_id()
    ok(await rest.post("/channels/", json={"channel": tg_id, "bot_id": bot}))
    queued = ok(await rest.post("/messages", json={"channel_id": tg_id, "message": "q"}))
    post_id = queued.json()["post_id"]
    before = await audited.events()
    revoked = audited.fake.add_bot()
    audited.fake.revoke(revoked)
    stranger = new_tg_id()
    refused = [
        await rest.post("/bots/", json={"token": revoked}),  # Telegram refuses the token
        await rest.patch(f"/bots/{bot}", json={"token": revoked}),
        await rest.delete("/bots/999999"),
        # The channel row is written, then the bot is found missing: all rolled back.
        await rest.post("/channels/", json={"channel": stranger, "bot_id": 999999}),
        await rest.post(f"/messages/{post_id}/pin"),  # not sent yet
        await rest.post("/messages", json={"channel_id": new_tg_id(), "message": "x"}),
        await rest.patch(f"/messages/{post_id}", json={"message": "long" * 2000}),
        await rest.delete("/channels/12345"),
        await rest.post("/media", files={"file": ("e.txt", b"", "text/plain")}),
    ]
    assert all(r.status_code >= 400 for r in refused), [r.status_code for r in refused]
    assert [e.id for e in await audited.events()] == [e.id for e in before]
    async with AsyncSession(audited.engine) as session:
        assert (
            await session.execute(select(Channel).where(Channel.tg_id == stranger))
        ).first() is None

    # Committed, then the queue refused its task: the event stays (the change is in
    # the database) and says its work never started.
    audited.publisher.refuse = True
    response = await rest.post(f"/channels/{tg_id}/check")
    assert response.status_code == 503
    [event] = (await audited.events())[len(before) :]
    assert event.action == "channel.check" and event.details["outcome"] == NOT_SCHEDULED


async def test_secrets_never_reach_the_log(audited: Audited, rest: httpx.AsyncClient) -> None:
    token = audited.fake.add_bot()
    bot = ok(await rest.post("/bots/", json={"token": token})).json()["data"]["id"]
    ok(await rest.patch(f"/bots/{bot}", json={"token": token, "description": token}))
    ok(await rest.post("/channels/", json={"channel": new_tg_id(), "bot_id": bot}))
    tg_id = new_tg_id()
    ok(await rest.post("/channels/", json={"channel": tg_id, "bot_id": bot}))
    ok(await rest.post("/messages", json={"channel_id": tg_id, "message": f"oops {token}"}))
    invite = "https://t.me/+AbCdEfGhIjKlMnOp"
    await rest.post("/channels/", json={"channel": invite, "bot_id": bot})
    events = await audited.events()
    assert {e.action for e in events} >= {"bot.register", "bot.update", "post.create"}
    dumped = json.dumps([e.details for e in events]) + repr([vars(e) for e in events])
    password = audited.settings.auth_password.get_secret_value()
    for secret in (token, token.partition(":")[2], password, "gAAAAA", "AbCdEfGhIjKlMnOp"):
        assert secret not in dumped, secret
    update_event = next(e for e in events if e.action == "bot.update")
    assert update_event.details["fields"] == ["description", "token"]


async def test_the_address_is_the_one_the_api_trusts(audited: Audited) -> None:
    """Behind nginx (a trusted peer) the client's address is its X-Forwarded-For, as
    ``botmgr api`` runs uvicorn (BOTMGR_FORWARDED_ALLOW_IPS); from any other peer the
    header is the client's own claim and is not taken."""
    for trusted, expected in (("127.0.0.1", "203.0.113.7"), ("10.9.9.9", ADDRESS)):
        app = ProxyHeadersMiddleware(audited.app, trusted_hosts=trusted)
        async with operator_client(app, audited.settings) as client:
            token = audited.fake.add_bot()
            headers = {"X-Forwarded-For": "203.0.113.7", "X-Request-ID": "req-" + trusted}
            ok(await client.post("/bots/", json={"token": token}, headers=headers))
        event = (await audited.events())[-1]
        assert (event.address, event.request_id) == (expected, "req-" + trusted)


async def test_a_request_id_that_is_not_plain_is_not_kept(
    audited: Audited, rest: httpx.AsyncClient
) -> None:
    headers = {"X-Request-ID": "<script>alert(1)</script>"}
    ok(await rest.post("/bots/", json={"token": audited.fake.add_bot()}, headers=headers))
    assert (await audited.events())[-1].request_id is None


async def test_get_audit_filters_and_needs_credentials(
    audited: Audited, rest: httpx.AsyncClient
) -> None:
    tokens = [audited.fake.add_bot() for _ in range(3)]
    bots = [ok(await rest.post("/bots/", json={"token": t})).json()["data"]["id"] for t in tokens]
    tg_id = new_tg_id()
    ok(await rest.post("/channels/", json={"channel": tg_id, "bot_id": bots[0]}))
    post_id = ok(await rest.post("/messages", json={"channel_id": tg_id, "message": "m"})).json()[
        "post_id"
    ]
    ok(await rest.delete(f"/messages/{post_id}"))
    ok(await rest.delete(f"/bots/{bots[1]}"))

    async def actions(**params: Any) -> list[str]:
        page = ok(await rest.get("/audit", params=params)).json()
        assert page["total"] >= len(page["events"])
        return [e["action"] for e in page["events"]]

    assert await actions() == [
        "bot.delete",
        "post.cancel",
        "post.create",
        "channel.bind",
        "bot.register",
        "bot.register",
        "bot.register",
    ]
    assert await actions(action="post.*") == ["post.cancel", "post.create"]
    assert await actions(action="bot.register", limit=2, offset=1) == ["bot.register"] * 2
    assert await actions(object_type="post", object_id=str(post_id)) == [
        "post.cancel",
        "post.create",
    ]
    assert await actions(object_type="bot", object_id=str(bots[1])) == [
        "bot.delete",
        "bot.register",
    ]
    assert await actions(actor=USER, actor_kind="api") == await actions()
    assert await actions(actor="someone-else") == []
    assert await actions(actor_kind="console") == []
    events = ok(await rest.get("/audit")).json()["events"]
    middle = events[3]["at"]  # channel.bind; the others came in their own transactions
    assert await actions(**{"from": middle}) == [e["action"] for e in events[:4]]
    assert await actions(**{"to": middle}) == [e["action"] for e in events[4:]]
    page = ok(await rest.get("/audit", params={"limit": 2})).json()
    assert (page["total"], page["limit"], page["offset"], len(page["events"])) == (7, 2, 0, 2)

    for params in (
        {"from": middle, "to": middle},  # an empty range
        {"object_id": "1"},  # an id alone names nothing
        {"actor_kind": "robot"},
        {"limit": 0},
    ):
        refused = await rest.get("/audit", params=params)
        assert refused.status_code == 422 and refused.json()["message"], params
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=audited.app), base_url=BASE_URL
    ) as anonymous:
        assert (await anonymous.get("/audit")).status_code == 401
        wrong = await anonymous.get("/audit", auth=(USER, "wrong"))
        assert wrong.status_code == 401
