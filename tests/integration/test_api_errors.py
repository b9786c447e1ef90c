"""Every route's auth, validation and not-found answers; no input yields a 500.
No Telegram involved (tasks are enqueued but no worker consumes this Redis prefix)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.app import create_app
from botmgr.posts import renderer
from tests.harness.client import api_client
from tests.harness.db import insert_bot
from tests.harness.env import settings_from

ROUTES = [
    ("GET", "/bots/"),
    ("POST", "/bots/"),
    ("GET", "/bots/1"),
    ("PATCH", "/bots/1"),
    ("DELETE", "/bots/1"),
    ("GET", "/channels/"),
    ("POST", "/channels/"),
    ("GET", "/channels/1"),
    ("DELETE", "/channels/1"),
    ("POST", "/messages"),
    ("GET", "/tasks/x"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_auth_required(api: httpx.AsyncClient, method: str, path: str) -> None:
    for auth in (None, ("operator", "wrong"), ("nobody", "x")):
        response = await api.request(method, path, json={}, auth=auth)
        assert response.status_code == 401, (method, path, auth)
        assert response.headers["www-authenticate"].startswith("Basic")
        assert "message" in response.json()


async def test_bots_error_shape(api: httpx.AsyncClient) -> None:
    response = await api.get("/bots/1", auth=None)
    assert response.json() == {"status": "error", "message": "authentication required"}
    response = await api.get("/channels/1", auth=None)
    assert response.json() == {"message": "authentication required"}


async def test_healthz(api: httpx.AsyncClient) -> None:
    response = await api.get("/healthz", auth=None)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


async def test_healthz_reports_redis_down(service_env: dict[str, str]) -> None:
    settings = settings_from({**service_env, "BOTMGR_REDIS_URL": "redis://127.0.0.1:1/0"})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "ok" and body["redis"].startswith("unreachable")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/bots/", {}),
        ("POST", "/bots/", {"token": "not a token"}),
        ("POST", "/bots/", {"token": 12345}),
        ("POST", "/bots/", {"token": "1:short"}),
        ("POST", "/bots/", {"token": "123:" + "a" * 30, "alias": "x" * 300}),
        ("POST", "/bots/", [1, 2]),
        ("PATCH", "/bots/1", {"token": "nope"}),
        ("GET", "/bots/0", None),
        ("GET", "/bots/-1", None),
        ("GET", "/bots/abc", None),
        ("GET", f"/bots/{2**70}", None),
        ("DELETE", f"/bots/{2**63}", None),
        ("GET", "/bots/?limit=0", None),
        ("GET", "/bots/?offset=-1", None),
        ("GET", "/channels/?limit=100000", None),
        ("POST", "/channels/", {}),
        ("POST", "/channels/", {"channel": None}),
        ("POST", "/channels/", {"channel": "@good_name", "bot_id": 0}),
        ("POST", "/channels/", {"channel": "@good_name", "bot_id": 2**64}),
        ("POST", "/messages", {}),
        ("POST", "/messages", {"channel_id": 1}),
        ("POST", "/messages", {"channel_id": "abc", "message": "hi"}),
        ("POST", "/messages", {"channel_id": None, "message": "hi"}),
    ],
)
async def test_malformed_is_422(
    api: httpx.AsyncClient, method: str, path: str, body: object
) -> None:
    response = await api.request(method, path, json=body)
    assert response.status_code == 422, response.text
    data = response.json()
    assert data["message"]
    if path.startswith("/bots"):
        assert data["status"] == "error"


async def test_not_json_is_422(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/bots/", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["status"] == "error"


@pytest.mark.parametrize(
    "path",
    [
        "/bots/987654321",
        "/channels/987654321",
        "/channels/-1000987654321",
        "/channels/abc",
        f"/channels/{2**70}",
        "/tasks/00000000-0000-0000-0000-000000000000",
        "/nope",
    ],
)
async def test_unknown_is_404(api: httpx.AsyncClient, path: str) -> None:
    response = await api.get(path)
    assert response.status_code == 404, response.text
    assert response.json()["message"]


async def test_unknown_on_mutations_is_404(api: httpx.AsyncClient) -> None:
    assert (await api.delete("/bots/987654321")).status_code == 404
    assert (await api.patch("/bots/987654321", json={"alias": "x"})).status_code == 404
    assert (await api.delete("/channels/987654321")).status_code == 404
    response = await api.post("/messages", json={"channel_id": -1000987654321, "message": "hi"})
    assert response.status_code == 404
    assert response.json() == {"message": "channel not found"}


async def test_wrong_method_is_json(api: httpx.AsyncClient) -> None:
    response = await api.put("/bots/1", json={})
    assert response.status_code == 405
    assert response.json()["message"]


async def test_nul_bytes_never_500(api: httpx.AsyncClient) -> None:
    response = await api.post("/channels/", json={"channel": "@abc\u0000def"})
    assert response.status_code == 503
    response = await api.post("/messages", json={"channel_id": "1\u0000", "message": "x"})
    assert response.status_code == 422
    response = await api.get("/channels/%00")
    assert response.status_code == 404


async def test_channel_shows_latest_stats(
    api: httpx.AsyncClient, db: AsyncSession, service_env: dict[str, str]
) -> None:
    from datetime import date

    from botmgr.models import ChannelStats

    bot = await insert_bot(db, settings_from(service_env))
    response = await api.post("/channels/", json={"channel": 7770001, "bot_id": bot.id})
    assert response.status_code == 202
    channel_id = (await api.get("/channels/7770001")).json()["id"]
    db.add_all(
        [
            ChannelStats(channel_id=channel_id, day=date(2026, 1, 1), posts=1, views=10),
            ChannelStats(
                channel_id=channel_id, day=date(2026, 1, 2), posts=3, views=42, subscribers=5
            ),
        ]
    )
    await db.commit()
    got = (await api.get("/channels/-1000007770001")).json()
    assert got["tg_id"] == 7770001 and got["bot_api_id"] == -1000007770001
    assert got["binding"]["status"] == "new" and got["binding"]["bot_link"] == f"@{bot.username}"
    stats = got["stats"]
    assert (stats["day"], stats["posts"], stats["views"], stats["subscribers"]) == (
        "2026-01-02",
        3,
        42,
        5,
    )
    listed = (await api.get("/channels/?limit=500")).json()
    assert any(c["tg_id"] == 7770001 for c in listed["channels"])

    # Binding the same channel again reuses the live binding; another bot is refused.
    other = await insert_bot(db, settings_from(service_env))
    response = await api.post("/channels/", json={"channel": "-1000007770001", "bot_id": other.id})
    assert response.status_code == 409
    response = await api.post("/channels/", json={"channel": "https://t.me/c/7770001/5"})
    assert response.status_code == 202
    assert (await api.get("/channels/7770001")).json()["binding"]["id"] == got["binding"]["id"]


async def test_broker_down_is_503(service_env: dict[str, str], db: AsyncSession) -> None:
    settings = settings_from({**service_env, "BOTMGR_REDIS_URL": "redis://127.0.0.1:1/0"})
    bot = await insert_bot(db, settings)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        auth = (settings.auth_username, settings.auth_password.get_secret_value())
        async with httpx.AsyncClient(transport=transport, base_url="http://t", auth=auth) as client:
            response = await client.post("/channels/", json={"channel": 8880001, "bot_id": bot.id})
    assert response.status_code == 503
    assert "task queue unavailable" in response.json()["message"]


async def test_channels_without_id_are_named_by_invite_or_username(
    api: httpx.AsyncClient, db: AsyncSession, service_env: dict[str, str]
) -> None:
    bot = await insert_bot(db, settings_from(service_env))
    for channel in ("https://t.me/joinchat/KeyInvite42", "@named_only_chan"):
        response = await api.post("/channels/", json={"channel": channel, "bot_id": bot.id})
        assert response.status_code == 202
    got = (await api.get("/channels/+KeyInvite42")).json()
    assert got["tg_id"] is None and got["binding"]["status"] == "new"
    assert got["reference"] == "https://t.me/joinchat/KeyInvite42"
    assert (await api.get("/channels/@Named_Only_Chan")).json()["username"] == "named_only_chan"
    response = await api.delete("/channels/+KeyInvite42")
    assert response.status_code == 200
    assert response.json()["binding"]["status"] == "inactive"
    assert response.json()["message"] == "Канал отвязан"
    assert (await api.get("/channels/+nothing_here")).status_code == 404
    assert (await api.get("/channels/@x")).status_code == 404


async def test_database_down_is_503_not_500(service_env: dict[str, str]) -> None:
    settings = settings_from(
        {**service_env, "BOTMGR_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/none"}
    )
    app = create_app(settings)
    auth = (settings.auth_username, settings.auth_password.get_secret_value())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", auth=auth) as client:
            bots = await client.get("/bots/")
            channel = await client.get("/channels/1")
            health = await client.get("/healthz")
    assert bots.status_code == 503 and bots.json()["status"] == "error"
    assert channel.status_code == 503 and set(channel.json()) == {"message"}
    assert health.status_code == 503 and health.json()["database"].startswith("unreachable")


async def test_prefer_wait_falls_back_to_202(
    api: httpx.AsyncClient, db: AsyncSession, service_env: dict[str, str]
) -> None:
    """No worker consumes this prefix: after the wait the answer is the usual 202."""
    import time

    bot = await insert_bot(db, settings_from(service_env))
    started = time.monotonic()
    response = await api.post(
        "/channels/", json={"channel": 9990001, "bot_id": bot.id}, headers={"Prefer": "wait=1"}
    )
    assert 0.9 < time.monotonic() - started < 5
    assert response.status_code == 202
    task = (await api.get(response.headers["location"])).json()
    assert task == {
        "task_id": response.json()["task_id"],
        "task_status": "PENDING",
        "task_result": None,
    }


@pytest.mark.parametrize(
    ("message", "limit"),
    [
        ("- " * 20000 + "x", "over the size limit of 16,384"),  # the 40 KB body
        ("a" * 16385, "over the size limit of 16,384"),
        ("я" * 8193, "over the size limit of 16,384"),  # 16,386 bytes
        ("- " * 17 + "x", "deeper than the nesting limit of 16 levels"),
        ("> " * 17 + "x", "deeper than the nesting limit of 16 levels"),
        ("".join("  " * n + "- x\n" for n in range(17)), "deeper than the nesting limit of 16"),
    ],
    ids=["issue-body", "bytes", "utf8-bytes", "lists", "quotes", "indentation"],
)
async def test_markdown_past_a_limit_is_422_naming_it(
    api: httpx.AsyncClient, message: str, limit: str
) -> None:
    # The body is checked before the channel: an unknown channel does not hide it.
    response = await api.post("/messages", json={"channel_id": -1000987654321, "message": message})
    assert response.status_code == 422, response.text
    assert response.json()["message"].startswith("message: ")
    assert limit in response.json()["message"]


async def test_markdown_limits_come_from_the_settings(service_env: dict[str, str]) -> None:
    env = {"BOTMGR_POST_MAX_MARKDOWN_BYTES": "100", "BOTMGR_POST_MAX_MARKDOWN_DEPTH": "3"}
    answers = {}
    try:
        async with api_client(settings_from({**service_env, **env})) as client:
            for message in ("a" * 101, "- - - - x", "- - - x"):
                body = {"channel_id": -1000987654321, "message": message}
                answers[message] = await client.post("/messages", json=body)
    finally:
        renderer.configure(renderer.RendererConfig())  # the other tests' limits again
    assert [answer.status_code for answer in answers.values()] == [422, 422, 404]
    assert "over the size limit of 100" in answers["a" * 101].json()["message"]
    assert "nesting limit of 3 levels" in answers["- - - - x"].json()["message"]
    # "- - - x" is within both: it went on to the channel, which is unknown (404).
