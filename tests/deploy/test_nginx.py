"""nginx.conf rendered as the Procfiles render it (and in TLS mode as compose.tls.yaml
has it rendered): `nginx -t`, then a real nginx (as an unprivileged user when the tests
run as root) in front of a small recording upstream."""

from __future__ import annotations

import asyncio
import http.server
import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.harness.nginx import (
    Nginx,
    Tls,
    nginx_binary,
    nginx_t,
    prefix_dir,
    render_nginx,
    running_nginx,
    start_nginx,
)
from tests.harness.processes import free_port
from tests.harness.tls import client_context, self_signed

NGINX = nginx_binary()
pytestmark = [
    pytest.mark.skipif(NGINX is None, reason="nginx absent: apt-get install nginx-light"),
    pytest.mark.skipif(
        shutil.which("envsubst") is None, reason="envsubst absent: apt-get install gettext-base"
    ),
]


@dataclass
class Upstream:
    """Answers every request with JSON and remembers the headers it was sent."""

    port: int
    seen: list[dict[str, str]] = field(default_factory=list)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    record = Upstream(port=0)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            record.seen.append({k.lower(): v for k, v in self.headers.items()})
            body = json.dumps({"path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    record.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield record
    server.shutdown()
    server.server_close()


@pytest.fixture
def prefix() -> Iterator[Path]:
    with prefix_dir() as path:
        yield path


@pytest.fixture(scope="module")
def nginx(upstream: Upstream) -> Iterator[Nginx]:
    with running_nginx(upstream.port) as running:
        yield running


@pytest.fixture(scope="module")
def tls_nginx(upstream: Upstream) -> Iterator[Nginx]:
    with running_nginx(upstream.port, tls_names=["localhost", "127.0.0.1"]) as running:
        yield running


def test_config_passes_nginx_t(prefix: Path) -> None:
    render_nginx("127.0.0.1:8080", "127.0.0.1:8000", prefix)
    rc, output = nginx_t(prefix)
    assert rc == 0, output
    assert "syntax is ok" in output and "test is successful" in output


def test_a_broken_render_fails_nginx_t(prefix: Path) -> None:
    # The check above must be able to fail: an unrendered placeholder is an error.
    render_nginx("", "127.0.0.1:8000", prefix)
    rc, output = nginx_t(prefix)
    assert rc != 0 and "test failed" in output


def test_forwarding_headers_reach_the_api(nginx: Nginx, upstream: Upstream) -> None:
    upstream.seen.clear()
    r = httpx.get(
        f"{nginx.url}/bots/",
        headers={"Authorization": "Basic dXNlcjpwYXNz", "X-Forwarded-For": "203.0.113.9"},
    )
    assert r.status_code == 200
    seen = upstream.seen[-1]
    assert seen["x-forwarded-for"] == "127.0.0.1"  # the real peer, never the client's claim
    assert seen["x-forwarded-proto"] == "http"
    assert seen["host"] == nginx.url.removeprefix("http://")
    assert seen["authorization"] == "Basic dXNlcjpwYXNz"  # passed on, never logged
    assert seen["x-request-id"]


def test_healthz_passes_through(nginx: Nginx) -> None:
    r = httpx.get(f"{nginx.url}/healthz")
    assert r.status_code == 200 and r.json() == {"path": "/healthz"}


def test_authorization_never_reaches_the_access_log(nginx: Nginx) -> None:
    secret = "Basic c2VjcmV0LXVzZXI6c2VjcmV0LXBhc3N3b3Jk"
    for _ in range(3):
        httpx.get(f"{nginx.url}/channels/", headers={"Authorization": secret})
    time.sleep(0.2)
    text = nginx.log.read_text()
    assert any(e["uri"] == "/channels/" for e in nginx.access_log())
    assert "c2VjcmV0" not in text and "secret-password" not in text


def test_oversized_body_is_refused_with_json(nginx: Nginx) -> None:
    r = httpx.post(f"{nginx.url}/messages", content=b"x" * (65 * 1024))
    assert r.status_code == 413
    assert r.json()["status"] == "error"
    ok = httpx.post(f"{nginx.url}/messages", content=b"x" * (60 * 1024))
    assert ok.status_code == 200


def test_the_longest_message_fits_the_body_limit(nginx: Nginx) -> None:
    # 4,096 UTF-16 units of astral characters, each JSON-escaped as a surrogate pair: the
    # largest body a Telegram-sized post can take.
    body = json.dumps({"channel_id": -1001234567890, "message": "\U0001f600" * 2048})
    assert len(body) > 24_000
    r = httpx.post(
        f"{nginx.url}/messages", content=body.encode(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 200


def test_rate_limit_answers_429_json(nginx: Nginx) -> None:
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=nginx.url) as client:
            return await asyncio.gather(*(client.get("/bots/") for _ in range(120)))

    answers = asyncio.run(burst())
    limited = [r for r in answers if r.status_code == 429]
    assert limited, "120 requests at once must exceed the per-client burst"
    assert limited[0].json() == {"status": "error", "message": "Too many requests"}
    assert limited[0].headers["retry-after"] == "1"
    assert sum(r.status_code == 200 for r in answers) >= 40  # the burst itself is served


def test_unreachable_api_answers_json_502(prefix: Path) -> None:
    proc, running = start_nginx(prefix, free_port())  # nothing listens there
    try:
        r = httpx.get(f"{running.url}/bots/")
        assert r.status_code == 502
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["status"] == "error"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- TLS mode (compose.tls.yaml): the same nginx.conf with nginx-tls/ rendered beside it --


def _tls(prefix: Path) -> Tls:
    cert, key = self_signed(prefix / "certs", ["localhost", "127.0.0.1"])
    return Tls(cert, key, "127.0.0.1:8080", 8443)


def test_tls_config_passes_nginx_t(prefix: Path) -> None:
    render_nginx("127.0.0.1:8443", "127.0.0.1:8000", prefix, _tls(prefix))
    rc, output = nginx_t(prefix)
    assert rc == 0, output
    assert "test is successful" in output
    text = (prefix / "nginx.conf").read_text() + "".join(
        p.read_text() for p in (prefix / "tls.d").rglob("*.conf")
    )
    assert "listen 127.0.0.1:8443 ssl;" in text and "listen 127.0.0.1:8080;" in text
    assert "${" not in text  # every placeholder rendered


def test_tls_without_its_certificate_fails_nginx_t(prefix: Path) -> None:
    tls = _tls(prefix)
    tls.cert.unlink()
    render_nginx("127.0.0.1:8443", "127.0.0.1:8000", prefix, tls)
    rc, output = nginx_t(prefix)
    assert rc != 0 and "cert.pem" in output


def test_plain_mode_sends_no_hsts(nginx: Nginx) -> None:
    r = httpx.get(f"{nginx.url}/bots/")
    assert r.status_code == 200 and "strict-transport-security" not in r.headers


def test_https_answers_with_hsts_and_tells_the_api(tls_nginx: Nginx, upstream: Upstream) -> None:
    upstream.seen.clear()
    assert tls_nginx.cert is not None
    with httpx.Client(verify=client_context(tls_nginx.cert)) as client:
        r = client.get(f"{tls_nginx.url}/bots/?limit=1")
        assert r.status_code == 200 and r.json() == {"path": "/bots/?limit=1"}
        assert r.headers["strict-transport-security"] == "max-age=63072000"
        # nginx's own answers carry it too (here its JSON 413).
        too_large = client.post(f"{tls_nginx.url}/messages", content=b"x" * (65 * 1024))
        assert too_large.status_code == 413
        assert too_large.headers["strict-transport-security"] == "max-age=63072000"
    assert upstream.seen[-1]["x-forwarded-proto"] == "https"  # the app marks cookies Secure


def test_plain_http_is_redirected_to_https(tls_nginx: Nginx) -> None:
    r = httpx.get(f"{tls_nginx.http_url}/admin/login?next=%2Fadmin%2F")
    assert r.status_code == 301
    assert r.headers["location"] == f"{tls_nginx.url}/admin/login?next=%2Fadmin%2F"
    assert "strict-transport-security" not in r.headers  # meaningless over plain HTTP
    # A client following it lands on the HTTPS server (the certificate checked).
    assert tls_nginx.cert is not None
    followed = httpx.get(
        f"{tls_nginx.http_url}/bots/", follow_redirects=True, verify=client_context(tls_nginx.cert)
    )
    assert followed.status_code == 200 and str(followed.url).startswith("https://")


def test_healthz_answers_over_plain_http_in_tls_mode(tls_nginx: Nginx) -> None:
    # Health checks (compose's, a load balancer's) ask over plain HTTP.
    r = httpx.get(f"{tls_nginx.http_url}/healthz")
    assert r.status_code == 200 and r.json() == {"path": "/healthz"}
