"""HTTPS through nginx's TLS server (nginx-tls/, as compose.tls.yaml has it rendered) in
front of the e2e stack's API: answers carry HSTS, plain HTTP is redirected, the API gets
the requests, and the console's login sets its session cookie Secure. Through the
stack's own plain-HTTP nginx (the sandbox) the same login still works, without Secure."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.stack import Stack
from tests.harness.nginx import Nginx, running_nginx
from tests.harness.tls import client_context

pytestmark = pytest.mark.timeout(120)
HSTS = "max-age=63072000"


@pytest.fixture(scope="module")
def tls_nginx(stack: Stack) -> Iterator[Nginx]:
    with running_nginx(int(stack.env["API_PORT"]), tls_names=["127.0.0.1"]) as running:
        yield running


@pytest.fixture
def https(tls_nginx: Nginx) -> Iterator[httpx.Client]:
    assert tls_nginx.cert is not None
    with httpx.Client(
        base_url=tls_nginx.url, verify=client_context(tls_nginx.cert), timeout=30
    ) as client:
        yield client


def _login(client: httpx.Client, auth: tuple[str, str]) -> httpx.Response:
    """The console's login form as a browser submits it: from the page, with whatever
    hidden fields the page has, from this origin; the answer is not followed."""
    page = client.get("/admin/login")
    assert page.status_code == 200, page.text
    hidden = dict(
        re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.text)
    )
    return client.post(
        "/admin/login",
        data={**hidden, "username": auth[0], "password": auth[1]},
        headers={"Origin": str(client.base_url).rstrip("/")},
    )


def _session_cookie(response: httpx.Response) -> str:
    (cookie,) = [c for c in response.headers.get_list("set-cookie") if "botmgr_console=" in c]
    return cookie


def test_https_answers_with_hsts(stack: Stack, https: httpx.Client) -> None:
    health = https.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.headers["strict-transport-security"] == HSTS
    bots = https.get("/bots/", auth=stack.auth)
    assert bots.status_code == 200, bots.text
    assert bots.headers["strict-transport-security"] == HSTS
    refused = https.get("/bots/")  # the API's own 401 gets it too
    assert refused.status_code == 401 and refused.headers["strict-transport-security"] == HSTS


def test_plain_http_is_redirected(tls_nginx: Nginx) -> None:
    r = httpx.get(f"{tls_nginx.http_url}/admin/")
    assert r.status_code == 301 and r.headers["location"] == f"{tls_nginx.url}/admin/"


def test_console_login_over_https_sets_a_secure_cookie(stack: Stack, https: httpx.Client) -> None:
    response = _login(https, stack.auth)
    assert response.status_code == 302, response.text
    assert response.headers["strict-transport-security"] == HSTS
    cookie = _session_cookie(response)
    attributes = [a.strip().lower() for a in cookie.split(";")[1:]]
    assert "secure" in attributes and "httponly" in attributes, cookie
    # The session works: the console's index answers, not the login form.
    index = https.get("/admin/")
    assert index.status_code == 200 and 'name="password"' not in index.text


def test_console_login_over_plain_http_still_works(stack: Stack) -> None:
    # The sandbox has no TLS: a Secure cookie would never come back to it.
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        response = _login(client, stack.auth)
        assert response.status_code == 302, response.text
        attributes = [a.strip().lower() for a in _session_cookie(response).split(";")[1:]]
        assert "secure" not in attributes
        assert "strict-transport-security" not in response.headers
        assert client.get("/admin/").status_code == 200
