"""The sandbox stack comes up through nginx with the seeded demo world."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.e2e.stack import Stack

pytestmark = pytest.mark.timeout(180)


def test_healthz_through_nginx_needs_no_credentials(stack: Stack) -> None:
    r = httpx.get(f"{stack.url}/healthz")
    assert r.status_code == 200
    assert r.headers["server"] == "nginx"
    assert r.json()["status"] == "ok"


def test_seed_names_a_demo_bot_and_two_channels(stack: Stack) -> None:
    seed = json.loads(stack.seed_file.read_text())
    assert seed["bot"]["token"] and seed["bot"]["username"]
    assert seed["public_channel"]["username"]
    assert seed["private_channel"]["username"] is None
