"""A real tgemu process (``python -m tgemu``) and a client of its control API.

Users of one process share it: each creates its own bots and channels with unique
usernames (``emu.unique("name")``) instead of resetting the world. Control-API helpers are
sync (httpx); ``telethon_client()`` gives a real Telethon client pointed at the emulator.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from telethon import TelegramClient, errors
from telethon.crypto import rsa
from telethon.sessions import StringSession
from telethon.sessions.abstract import Session
from telethon.tl import types

from botmgr.telegram.tl import Entity, from_telethon

READY = re.compile(r"^tgemu ready mtproto=(\S+):(\d+) control=(\S+):(\d+)(?: dcs=(\S+))?$")
START_TIMEOUT = 60.0


class TgEmu:
    """A running emulator: where it listens, and helpers over its control API."""

    def __init__(
        self,
        host: str,
        port: int,
        control_url: str,
        public_key_path: Path,
        dcs: dict[int, tuple[str, int]] | None = None,
    ) -> None:
        self.host = host
        self.port = port  # the entry DC (2): where a client with an empty session lands
        # Every DC's address, e.g. {1: ("127.0.0.1", 40001), 2: (host, port), …}.
        self.dcs = dcs or {2: (host, port)}
        self.control_url = control_url
        self.public_key_path = public_key_path
        self.public_key_pem = public_key_path.read_text()
        self.http = httpx.Client(base_url=control_url, timeout=30)
        self._names = itertools.count(1)
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []  # the process's stdout lines so far
        rsa.add_key(self.public_key_pem, old=False)

    # -- plumbing ---------------------------------------------------------------------
    def request(self, method: str, path: str, json: Any = None) -> Any:
        response = self.http.request(method, path, json=json)
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path} -> {response.status_code} {response.text}")
        return response.json()

    def unique(self, prefix: str = "t") -> str:
        """A username nobody else in this session has (≤ 32 characters)."""
        return f"{prefix[:14]}_{os.getpid() % 100000}_{next(self._names)}"

    # -- world --------------------------------------------------------------------------
    def create_bot(
        self,
        username: str | None = None,
        first_name: str | None = None,
        dc_id: int | None = None,
    ) -> dict:
        """A bot; its home DC is ``dc_id`` or tgemu's round robin (``bot["dc_id"]``)."""
        body = {
            "username": username or self.unique("bot") + "_bot",
            "first_name": first_name,
            "dc_id": dc_id,
        }
        return self.request("POST", "/bots", body)

    def revoke_token(self, bot_id: int) -> str:
        return self.request("POST", f"/bots/{bot_id}/revoke")["token"]

    def create_user(self, first_name: str = "Human", username: str | None = None) -> dict:
        return self.request("POST", "/users", {"first_name": first_name, "username": username})

    def create_channel(self, title: str, username: str | None = None) -> dict:
        return self.request("POST", "/channels", {"title": title, "username": username})

    def channel(self, channel_id: int) -> dict:
        return self.request("GET", f"/channels/{channel_id}")

    def grant_admin(self, channel_id: int, user_id: int, **rights: bool) -> dict:
        """Add as member and admin; with no rights given, the right to post."""
        body = rights or {"post_messages": True}
        return self.request("PUT", f"/channels/{channel_id}/admins/{user_id}", body)

    def revoke_admin(self, channel_id: int, user_id: int) -> dict:
        return self.request("DELETE", f"/channels/{channel_id}/admins/{user_id}")

    def add_member(self, channel_id: int, user_id: int) -> dict:
        return self.request("PUT", f"/channels/{channel_id}/members/{user_id}")

    def remove_member(self, channel_id: int, user_id: int) -> dict:
        return self.request("DELETE", f"/channels/{channel_id}/members/{user_id}")

    def delete_channel(self, channel_id: int) -> dict:
        return self.request("DELETE", f"/channels/{channel_id}")

    def post(self, channel_id: int, text: str, **fields: Any) -> dict:
        """A post by a human admin (the creator unless ``sender_id``); ``date``, ``views``."""
        return self.request("POST", f"/channels/{channel_id}/messages", {"text": text, **fields})

    def post_many(self, channel_id: int, count: int, text: str = "bulk", **fields: Any) -> dict:
        """``count`` posts in one call; the last one's fields plus ``first_id``."""
        return self.post(channel_id, text, count=count, **fields)

    def edit(
        self, channel_id: int, message_id: int, text: str | None = None, times: int = 1
    ) -> dict:
        """Edit a post ``times`` times (pts + times); ``channel_pts`` in the answer."""
        body: dict[str, Any] = {"times": times} | ({"text": text} if text is not None else {})
        return self.request("POST", f"/channels/{channel_id}/messages/{message_id}/edit", body)

    def delete_messages(self, channel_id: int, *ids: int) -> dict:
        return self.request("POST", f"/channels/{channel_id}/messages/delete", {"ids": list(ids)})

    def pin(self, channel_id: int, message_id: int, pinned: bool = True) -> dict:
        return self.request(
            "POST", f"/channels/{channel_id}/messages/{message_id}/pin", {"pinned": pinned}
        )

    def messages(self, channel_id: int) -> list[dict]:
        return self.request("GET", f"/channels/{channel_id}/messages")

    def set_views(self, channel_id: int, message_id: int, views: int) -> dict:
        return self.request(
            "PATCH", f"/channels/{channel_id}/messages/{message_id}", {"views": views}
        )

    def set_counts(self, channel_id: int, message_id: int, **counts: Any) -> dict:
        """Set ``views``/``forwards``/``reactions`` and/or their ``history`` by age
        ([{"age", "views", "forwards", "reactions"}], see tgemu's Message.history)."""
        return self.request("PATCH", f"/channels/{channel_id}/messages/{message_id}", counts)

    def backdate(self, channel_id: int, message_id: int, seconds: int) -> dict:
        """Make a post ``seconds`` old (Telegram's time limits on deleting and editing)."""
        date = int(time.time()) - seconds
        return self.request(
            "PATCH", f"/channels/{channel_id}/messages/{message_id}", {"date": date}
        )

    def expire_file_references(self) -> int:
        """Every stored photo and document gets a new file reference (the old ones now
        answer FILE_REFERENCE_EXPIRED); how many files."""
        return int(self.request("POST", "/files/expire")["expired"])

    # -- faults, metrics, config --------------------------------------------------------
    def add_fault(
        self,
        method: str,
        error: str,
        times: int = 1,
        bot_id: int | None = None,
        code: int | None = None,
    ) -> dict:
        body = {"method": method, "error": error, "times": times, "bot_id": bot_id, "code": code}
        return self.request("POST", "/faults", body)

    def clear_faults(self) -> None:
        self.request("DELETE", "/faults")

    def metrics(self) -> dict:
        return self.request("GET", "/metrics")

    def config(self, **changes: Any) -> dict:
        """``config(latency_ms=50, rate_limits=False)``; no arguments: read it."""
        if not changes:
            return self.request("GET", "/config")
        return self.request("PUT", "/config", changes)

    # -- Telethon -------------------------------------------------------------------------
    def telethon_client(
        self, session: str | Session | None = None, **options: Any
    ) -> TelegramClient:
        """A client for this emulator; ``session`` a StringSession string or object. A
        session naming a DC is pointed at that DC of this emulator, an empty one at the
        entry DC. ``options`` go to TelegramClient (e.g. ``local_addr``)."""
        if not isinstance(session, Session):
            session = StringSession(session)
        dc = session.dc_id if session.dc_id in self.dcs else 2
        session.set_dc(dc, *self.dcs[dc])
        return TelegramClient(
            session,
            api_id=1,
            api_hash="tgemu",
            receive_updates=False,
            flood_sleep_threshold=0,
            request_retries=0,
            raise_last_call_error=True,
            **options,
        )

    async def sign_in(self, client: TelegramClient, token: str) -> types.User:
        """``client.sign_in(bot_token=…)`` following one USER_MIGRATE to the bot's home DC.

        With request_retries=0 Telethon has already switched DC when it raises
        UserMigrateError (client/users.py ``_call`` → ``_switch_dc``), but it picks the
        address from a config cached on the class — possibly another emulator's in a
        process that runs several — so the session is pointed at this one's DC first."""
        try:
            user = await client.sign_in(bot_token=token)
        except errors.UserMigrateError as e:
            if (client.session.server_address, client.session.port) != self.dcs[e.new_dc]:
                await client.disconnect()
                client.session.set_dc(e.new_dc, *self.dcs[e.new_dc])
                client.session.auth_key = None
                client._sender.auth_key.key = None  # as _switch_dc does
                await client.connect()
            user = await client.sign_in(bot_token=token)
        assert isinstance(user, types.User)
        return user

    def close(self) -> None:
        self.http.close()


def stored_entities(message: dict) -> list[Entity]:
    """The entities of a message as tgemu stores it (Telethon's to_dict()), as the service's
    own Entity values: what a test compares with what the service rendered."""
    objects = [
        getattr(types, e["_"])(**{k: v for k, v in e.items() if k != "_"})
        for e in message["entities"]
    ]
    return from_telethon(objects)


@contextmanager
def spawn_tgemu(workdir: Path, *extra_args: str) -> Iterator[TgEmu]:
    """Run ``python -m tgemu`` on free ports until the block ends (SIGTERM, then kill).

    The RSA key pair lives in ``workdir``, so a second run there presents the same key;
    ``extra_args`` e.g. ``("--state", path, "--latency-ms", "20")``.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    public_key = workdir / "public.pem"
    with (workdir / "stderr.log").open("a") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tgemu",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--control-port",
                "0",
                "--public-key",
                str(public_key),
                "--private-key",
                str(workdir / "private.pem"),
                "--log-level",
                "info",
                *extra_args,
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            match, output = _wait_ready(process)
            emu = TgEmu(
                match[1],
                int(match[2]),
                f"http://{match[3]}:{match[4]}",
                public_key,
                parse_dcs(match[5]),
            )
            emu.process = process
            emu.output = output
            try:
                yield emu
            finally:
                emu.close()
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def parse_dcs(field: str | None) -> dict[int, tuple[str, int]] | None:
    """``1=127.0.0.1:4001,2=127.0.0.1:4430,…`` (the ready line's dcs=) → {dc: (host, port)}."""
    if not field:
        return None
    dcs: dict[int, tuple[str, int]] = {}
    for item in field.split(","):
        dc, _, address = item.partition("=")
        host, _, port = address.rpartition(":")
        dcs[int(dc)] = (host, int(port))
    return dcs


def _wait_ready(process: subprocess.Popen[str]) -> tuple[re.Match[str], list[str]]:
    assert process.stdout is not None
    found: list[re.Match[str]] = []
    seen: list[str] = []

    def read() -> None:
        # Keep draining after the ready line so the pipe never fills.
        for line in process.stdout:  # type: ignore[union-attr]
            seen.append(line.rstrip())
            match = READY.match(line.strip())
            if match and not found:
                found.append(match)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    while not found:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"tgemu did not start (exit {process.poll()}): {seen}")
        time.sleep(0.02)
    return found[0], seen
