"""nginx.conf rendered as the Procfiles render it: `nginx -t`, then a real nginx (as an
unprivileged user when the tests run as root) in front of a small recording upstream."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.deploy.files import nginx_binary, render_nginx
from tests.harness.processes import free_port

NGINX = nginx_binary()
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx absent: apt-get install nginx-light")
NOBODY = 65534


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


def _as_unprivileged(path: Path) -> dict[str, int]:
    """Run nginx as nobody when we are root: it must not need root anywhere. (``path``
    comes from ``prefix_dir``: pytest's own temp dirs are closed to other users.)"""
    if os.geteuid() != 0:
        return {}
    for p in [path, *path.rglob("*")]:
        os.chown(p, NOBODY, NOBODY)
    return {"user": NOBODY, "group": NOBODY}


@contextlib.contextmanager
def prefix_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="botmgr-nginx-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def prefix() -> Iterator[Path]:
    with prefix_dir() as path:
        yield path


@dataclass
class Nginx:
    url: str
    log: Path

    def access_log(self) -> list[dict[str, object]]:
        return [
            json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")
        ]


def start_nginx(prefix: Path, upstream_port: int) -> tuple[subprocess.Popen[bytes], Nginx]:
    port = free_port()
    render_nginx(f"127.0.0.1:{port}", f"127.0.0.1:{upstream_port}", prefix)
    log = prefix / "out.log"
    log.touch()
    who = _as_unprivileged(prefix)
    assert NGINX is not None
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [NGINX, "-e", "stderr", "-p", f"{prefix}/", "-c", "nginx.conf", "-g", "daemon off;"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **who,
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
    return proc, Nginx(url=f"http://127.0.0.1:{port}", log=log)


@pytest.fixture(scope="module")
def nginx(upstream: Upstream) -> Iterator[Nginx]:
    with prefix_dir() as path:
        proc, running = start_nginx(path, upstream.port)
        yield running
        proc.terminate()
        proc.wait(timeout=10)


def nginx_t(prefix: Path) -> tuple[int, str]:
    """`nginx -t` on the rendered config; output to a file nginx's user may reopen."""
    out = prefix / "t.log"
    out.touch()
    who = _as_unprivileged(prefix)
    assert NGINX is not None
    with out.open("ab") as sink:
        rc = subprocess.run(
            [NGINX, "-e", "stderr", "-t", "-p", f"{prefix}/", "-c", "nginx.conf"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            timeout=30,
            **who,
        ).returncode
    return rc, out.read_text()


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
