"""admin.cookies: a cookie set over HTTPS (the scheme uvicorn derives from nginx's
X-Forwarded-Proto) gets the Secure attribute; over plain HTTP (the sandbox) it does not."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from admin.cookies import SecureCookiesOverTLS, secure


async def _set_cookies(request: Request) -> PlainTextResponse:
    response = PlainTextResponse(request.url.scheme)
    response.set_cookie("session", "abc", httponly=True, samesite="strict", path="/admin")
    response.set_cookie("already", "x", secure=True)
    return response


APP = SecureCookiesOverTLS(Starlette(routes=[Route("/", _set_cookies)]))


async def _cookies(base_url: str) -> list[str]:
    transport = httpx.ASGITransport(app=APP)
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        response = await client.get("/")
    assert response.status_code == 200
    return response.headers.get_list("set-cookie")


async def test_cookies_over_https_are_secure() -> None:
    session, already = await _cookies("https://botmgr.test")
    assert session.startswith("session=abc;") and session.endswith("; Secure")
    assert "HttpOnly" in session and "SameSite=strict" in session and "Path=/admin" in session
    assert already.lower().count("secure") == 1  # not added twice


async def test_cookies_over_plain_http_are_left_alone() -> None:
    session, _ = await _cookies("http://botmgr.test")
    assert "secure" not in session.lower()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (b"a=1; Path=/", b"a=1; Path=/; Secure"),
        (b"a=1; secure", b"a=1; secure"),
        (b"a=secure; Path=/", b"a=secure; Path=/; Secure"),  # the value is no attribute
    ],
)
def test_secure_adds_the_attribute_once(given: bytes, expected: bytes) -> None:
    assert secure(given) == expected
