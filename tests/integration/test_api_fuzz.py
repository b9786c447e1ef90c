"""Odd inputs on every route: always a JSON answer, never a 500."""

from __future__ import annotations

import itertools

import httpx
import pytest

ODD = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    2**64,
    -(2**70),
    "",
    " ",
    "\u0000",
    "ü" * 3,
    "💥",
    "x" * 20_000,
    [],
    {},
    [1, [2, [3]]],
    {"a": {"b": None}},
    "-100",
    "@",
    "+",
    "../..",
]
FIELDS = {
    ("POST", "/bots/"): ["alias", "description", "token", "name"],
    ("PATCH", "/bots/1"): ["alias", "description", "token", "name"],
    ("POST", "/channels/"): ["channel", "bot_id"],
    ("POST", "/messages"): ["channel_id", "message"],
}
PATHS = ["/bots/{}", "/channels/{}", "/tasks/{}"]
SEGMENTS = [
    "0",
    "-0",
    "1e3",
    "%20",
    "%F0%9F%92%A5",
    "-1000000000000",
    "@",
    "+",
    "+" + "a" * 70,
    "9" * 40,
    "-" + "9" * 40,
    "null",
    "%00",
]


@pytest.mark.parametrize(
    ("route", "field"), [(r, f) for r, fields in FIELDS.items() for f in fields]
)
async def test_odd_field_values(api: httpx.AsyncClient, route: tuple[str, str], field: str) -> None:
    method, path = route
    for value in ODD:
        body = {f: "@some_channel" if f == "channel" else "x" for f in FIELDS[route]}
        body[field] = value
        if field != "token":
            body.pop("token", None)  # a well-formed token would call Telegram
        response = await api.request(method, path, json=body)
        assert response.status_code < 500 or response.status_code == 503, (field, value)
        assert isinstance(response.json(), dict)


async def test_odd_path_segments(api: httpx.AsyncClient) -> None:
    for template, segment in itertools.product(PATHS, SEGMENTS):
        for method in ("GET", "DELETE"):
            response = await api.request(method, template.format(segment))
            assert response.status_code in (404, 405, 422), (
                method,
                template,
                segment,
                response.text,
            )
            assert isinstance(response.json(), dict)


async def test_odd_bodies(api: httpx.AsyncClient) -> None:
    for path in ("/bots/", "/channels/", "/messages"):
        for content in (b"", b"null", b"[]", b"\xff\xfe", b"{" * 5000, b'"str"', b"1e999"):
            response = await api.post(
                path, content=content, headers={"content-type": "application/json"}
            )
            assert response.status_code == 422, (path, content[:20], response.text)
