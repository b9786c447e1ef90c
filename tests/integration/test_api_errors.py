"""Every route's auth, validation and not-found answers; no input yields a 500.
No Telegram involved (tasks are enqueued but no worker consumes this Redis prefix)."""

from __future__ import annotations

import httpx
import pytest

from botmgr.app import create_app
from tests.fixtures.service import settings_from

ROUTES = [
    ("GET", "/bots/"), ("POST", "/bots/"), ("GET", "/bots/1"), ("PATCH", "/bots/1"),
    ("DELETE", "/bots/1"), ("GET", "/channels/"), ("POST", "/channels/"),
    ("GET", "/channels/1"), ("DELETE", "/channels/1"), ("POST", "/messages"),
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
async def test_malformed_is_422(api: httpx.AsyncClient, method: str, path: str,
                                body: object) -> None:
    response = await api.request(method, path, json=body)
    assert response.status_code == 422, response.text
    data = response.json()
    assert data["message"]
    if path.startswith("/bots"):
        assert data["status"] == "error"


async def test_not_json_is_422(api: httpx.AsyncClient) -> None:
    response = await api.post("/bots/", content=b"{not json",
                              headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["status"] == "error"


@pytest.mark.parametrize(
    "path",
    ["/bots/987654321", "/channels/987654321", "/channels/-1000987654321", "/channels/abc",
     f"/channels/{2**70}", "/tasks/00000000-0000-0000-0000-000000000000", "/nope"],
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
