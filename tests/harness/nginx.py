"""nginx as the deployment runs it, natively: nginx.conf rendered by envsubst restricted
to its placeholders (as the Procfiles do) and, in TLS mode, nginx-tls/ rendered into
tls.d/ beside it (as compose.tls.yaml has the official image do); run as an unprivileged
user when the tests run as root."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from botmgr.sandbox.stack import nginx_binary
from tests.harness.env import ROOT
from tests.harness.processes import free_port

NGINX_TEMPLATE = ROOT / "nginx.conf"
# The only names nginx.conf leaves to envsubst; everything else is nginx's own $variable.
NGINX_PLACEHOLDERS = frozenset({"NGINX_LISTEN", "NGINX_UPSTREAM"})
# TLS mode: nginx-tls/<level>/<file> is rendered as tls.d/<level>/<file>, where
# nginx.conf includes it; these names are its placeholders.
TLS_TEMPLATES = {
    f"tls.d/{path.relative_to(ROOT / 'nginx-tls')}": path
    for path in sorted((ROOT / "nginx-tls").rglob("*.conf"))
}
TLS_PLACEHOLDERS = frozenset(
    {"NGINX_HTTP_LISTEN", "NGINX_HTTPS_PORT", "NGINX_TLS_CERT", "NGINX_TLS_KEY"}
)
NOBODY = 65534


@dataclass(frozen=True)
class Tls:
    cert: Path  # PEM chain and key nginx serves
    key: Path
    http_listen: str  # where the plain-HTTP server that redirects listens
    https_port: int  # the port the redirect sends clients to


def envsubst(template: Path, values: Mapping[str, str]) -> str:
    """``template`` with ``${NAME}`` replaced for exactly the names in ``values``."""
    program = shutil.which("envsubst")
    if program is None:
        raise RuntimeError("envsubst is missing (Debian package gettext-base)")
    return subprocess.run(
        [program, " ".join(f"${{{n}}}" for n in sorted(values))],
        input=template.read_text(),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **values},
    ).stdout


def render_nginx(listen: str, upstream: str, out_dir: Path, tls: Tls | None = None) -> Path:
    """nginx.conf (and with ``tls`` the TLS pieces) rendered into ``out_dir``; ``listen``
    is the main server's address, which speaks HTTPS with ``tls``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    values = {"NGINX_LISTEN": f"{listen} ssl" if tls else listen, "NGINX_UPSTREAM": upstream}
    path = out_dir / "nginx.conf"
    path.write_text(envsubst(NGINX_TEMPLATE, values))
    if tls is not None:
        tls_values = {
            "NGINX_HTTP_LISTEN": tls.http_listen,
            "NGINX_HTTPS_PORT": str(tls.https_port),
            "NGINX_TLS_CERT": str(tls.cert),
            "NGINX_TLS_KEY": str(tls.key),
        }
        for name, template in TLS_TEMPLATES.items():
            (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (out_dir / name).write_text(envsubst(template, tls_values))
    return path


def as_unprivileged(path: Path) -> dict[str, int]:
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


@dataclass
class Nginx:
    url: str  # the main server: http://, or https:// in TLS mode
    log: Path
    http_url: str = ""  # TLS mode: the plain-HTTP server that redirects
    cert: Path | None = None  # TLS mode: the certificate it serves (tls.client_context)

    def access_log(self) -> list[dict[str, object]]:
        return [
            json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")
        ]


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
    raise RuntimeError(f"nginx does not listen on {port}:\n{log.read_text()}")


def start_nginx(
    prefix: Path, upstream_port: int, tls: Tls | None = None
) -> tuple[subprocess.Popen[bytes], Nginx]:
    """nginx in front of ``upstream_port``, in ``prefix`` (from ``prefix_dir``); with
    ``tls`` (its ``http_listen`` and ``https_port`` are filled in here) in TLS mode."""
    port = free_port()
    http_port = free_port() if tls else 0
    if tls is not None:
        tls = Tls(tls.cert, tls.key, f"127.0.0.1:{http_port}", port)
    render_nginx(f"127.0.0.1:{port}", f"127.0.0.1:{upstream_port}", prefix, tls)
    log = prefix / "out.log"
    log.touch()
    who = as_unprivileged(prefix)
    binary = nginx_binary()
    assert binary is not None
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [binary, "-e", "stderr", "-p", f"{prefix}/", "-c", "nginx.conf", "-g", "daemon off;"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **who,
        )
    for each in (port, http_port) if tls else (port,):
        _wait_listening(each, proc, log)
    scheme = "https" if tls else "http"
    return proc, Nginx(
        url=f"{scheme}://127.0.0.1:{port}",
        log=log,
        http_url=f"http://127.0.0.1:{http_port}" if tls else "",
        cert=tls.cert if tls else None,
    )


@contextlib.contextmanager
def running_nginx(upstream_port: int, tls_names: Sequence[str] | None = None) -> Iterator[Nginx]:
    """nginx in front of ``upstream_port`` in a prefix of its own, stopped at the end;
    with ``tls_names`` in TLS mode, with a fresh certificate for them (``tls.py``)."""
    from tests.harness.tls import self_signed

    with prefix_dir() as path:
        tls = None
        if tls_names is not None:
            cert, key = self_signed(path / "certs", list(tls_names))
            tls = Tls(cert, key, "", 0)
        proc, running = start_nginx(path, upstream_port, tls)
        try:
            yield running
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def nginx_t(prefix: Path) -> tuple[int, str]:
    """`nginx -t` on the config rendered in ``prefix``; output to a file nginx's user may
    reopen."""
    out = prefix / "t.log"
    out.touch()
    who = as_unprivileged(prefix)
    binary = nginx_binary()
    assert binary is not None
    with out.open("ab") as sink:
        rc = subprocess.run(
            [binary, "-e", "stderr", "-t", "-p", f"{prefix}/", "-c", "nginx.conf"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            timeout=30,
            **who,
        ).returncode
    return rc, out.read_text()
