"""The ``botmgr`` commands compose runs: ``api`` serves, ``beat`` starts with redbeat."""

from __future__ import annotations

import os
import subprocess
import time

import httpx
import pytest

from tests.harness.env import ROOT
from tests.harness.processes import botmgr_argv, free_port

pytestmark = pytest.mark.timeout(60)


def test_api_command_serves(service_env: dict[str, str]) -> None:
    port = free_port()
    process = subprocess.Popen(
        botmgr_argv("api", "--host", "127.0.0.1", "--port", str(port)),
        env={**os.environ, **service_env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert response.status_code == 200 and response.json()["database"] == "ok"
        auth = (service_env["BOTMGR_AUTH_USERNAME"], service_env["BOTMGR_AUTH_PASSWORD"])
        assert httpx.get(f"http://127.0.0.1:{port}/bots/", auth=auth).status_code == 200
    finally:
        process.terminate()
        _, err = process.communicate(timeout=20)
    assert service_env["BOTMGR_AUTH_PASSWORD"].encode() not in err


def test_placeholder_secrets_stop_the_api(service_env: dict[str, str]) -> None:
    env = {**os.environ, **service_env, "BOTMGR_SECRET_KEY": "change-me"}
    env.pop("BOTMGR_DEV", None)
    result = subprocess.run(
        botmgr_argv("api", "--port", "1"),
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert b"BOTMGR_SECRET_KEY" in result.stderr


def test_beat_command_starts(service_env: dict[str, str]) -> None:
    process = subprocess.Popen(
        botmgr_argv("beat"),
        env={**os.environ, **service_env},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(4)
        assert process.poll() is None
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=20)
    assert "redbeat" in out.lower() or "beat" in out.lower()
