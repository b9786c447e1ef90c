"""The ``python -m tgemu`` process: state across restarts, the demo world, the control API."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest
from telethon import errors
from telethon.tl import functions, types

from tests.harness.tgemu import TgEmu, spawn_tgemu


async def test_state_file_keeps_world_and_sessions_across_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with spawn_tgemu(tmp_path / "emu", "--state", str(state)) as emu:
        bot = emu.create_bot("restart_bot")
        made = emu.create_channel("Kept", "kept_channel")
        emu.grant_admin(made["id"], bot["id"])
        client = emu.telethon_client()
        await client.connect()
        await emu.sign_in(client, bot["token"])
        channel = await client.get_entity("@kept_channel")
        await client.send_message(channel, "before restart")
        saved = client.session.save()
        await client.disconnect()
    assert state.exists() and oct(state.stat().st_mode & 0o777) == "0o600"

    with spawn_tgemu(tmp_path / "emu", "--state", str(state)) as emu:
        client = emu.telethon_client(saved)
        await client.connect()
        try:
            me = await client.get_me()
            assert me is not None and me.id == bot["id"]
            # the access hash the client learnt before the restart is still valid
            peer = types.InputPeerChannel(channel.id, channel.access_hash)
            sent = await client.send_message(peer, "after restart")
            assert sent.id == 2
        finally:
            await client.disconnect()
        assert [m["text"] for m in emu.messages(made["id"])] == ["before restart", "after restart"]
        assert emu.metrics()["logins"] == {}  # no login in this process


async def test_seed_demo_world(tmp_path: Path) -> None:
    seed_file = tmp_path / "seed.json"
    with spawn_tgemu(tmp_path / "emu", "--seed-demo", "--seed-out", str(seed_file)) as emu:
        seed = json.loads(seed_file.read_text())
        assert not any(seed["bot"]["token"] in line for line in emu.output)
        client = emu.telethon_client()
        await client.connect()
        try:
            me = await emu.sign_in(client, seed["bot"]["token"])
            assert me.id == seed["bot"]["id"]
            public = await client.get_entity("@" + seed["public_channel"]["username"])
            with pytest.raises(errors.UserNotParticipantError):
                await client(
                    functions.channels.GetParticipantRequest(public, types.InputPeerSelf())
                )
            assert seed["private_channel"]["invite_link"].startswith("https://t.me/+")
            assert seed["private_channel"]["bot_api_id"] == int(
                f"-100{seed['private_channel']['id']}"
            )
            emu.request("POST", "/reset")  # the world is gone, and with it the login
            with pytest.raises(errors.AuthKeyUnregisteredError):
                await client(functions.updates.GetStateRequest())
            assert emu.metrics()["logins"] == {}
        finally:
            await client.disconnect()


def test_control_api_errors_and_routes(tgemu: TgEmu) -> None:
    http = tgemu.http
    assert http.post("/bots", json={}).status_code == 422
    assert http.post("/bots", json={"username": "no spaces"}).status_code == 422
    name = tgemu.unique("dup")
    assert http.post("/bots", json={"username": name}).status_code == 201
    assert http.post("/channels", json={"title": "x", "username": name}).status_code == 409
    assert http.get("/channels/123").status_code == 404
    assert http.patch("/channels/abc/messages/1", json={"views": 1}).status_code == 404
    made = tgemu.create_channel("Routes")
    assert tgemu.channel(made["bot_api_id"])["id"] == made["id"]  # both id forms
    assert (
        http.put(f"/channels/{made['id']}/admins/1", json={"post_messages": True}).status_code
        == 404
    )
    bot = tgemu.create_bot()
    bad_right = http.put(f"/channels/{made['id']}/admins/{bot['id']}", json={"fly": True})
    assert bad_right.status_code == 422
    post = tgemu.post(made["id"], "seeded", date=1_700_000_000, views=55)
    assert (post["date"], post["views"], post["random_id"]) == (1_700_000_000, 55, None)
    assert tgemu.set_views(made["id"], post["id"], 56)["views"] == 56
    assert (
        http.post("/faults", json={"method": "messages.nope", "error": "INTERNAL"}).status_code
        == 422
    )
    fault = tgemu.add_fault("channels.getMessages", "RPC_CALL_FAIL", times=2, bot_id=bot["id"])
    assert (fault["code"], fault["times"]) == (500, 2)
    assert tgemu.add_fault("users.getUsers", "SESSION_REVOKED", bot_id=bot["id"])["code"] == 401
    assert (
        tgemu.add_fault("users.getUsers", "PEER_FLOOD", bot_id=bot["id"], code=403)["code"] == 403
    )
    tgemu.clear_faults()
    assert http.get("/faults").json() == []
    assert tgemu.config(latency_ms=0)["latency_ms"] == 0
    assert http.put("/config", json={"bogus": 1}).status_code == 422
    metrics = tgemu.metrics()
    assert {"calls", "errors", "flood_waits", "logins", "connections"} <= set(metrics)


def test_control_api_listens_on_loopback_only(tgemu: TgEmu) -> None:
    assert tgemu.control_url.startswith("http://127.0.0.1:")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("10.254.254.254", 9))  # UDP connect sends nothing; picks a local address
        outside_ip = probe.getsockname()[0]
    if outside_ip.startswith("127."):
        pytest.skip("this machine has no non-loopback address to try")
    port = int(tgemu.control_url.rsplit(":", 1)[1])
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://{outside_ip}:{port}/health", timeout=2)
