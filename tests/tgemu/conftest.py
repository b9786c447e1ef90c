"""Fixtures for the MTProto layer tests (tests/tgemu/test_network*.py): a real
``start_server`` on a free port, answered by ``NetDispatcher``, a stand-in for the world
that knows just the bot connect sequence, and real Telethon clients pointed at it."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from telethon import TelegramClient
from telethon.crypto import rsa as telethon_rsa
from telethon.network.connection import Connection, ConnectionTcpFull
from telethon.sessions import StringSession
from telethon.tl import types
from telethon.tl.tlobject import TLObject, TLRequest

from tgemu.rpc import CallContext, RpcError
from tgemu.server import KeyStore, MTProtoServer, load_or_create_rsa_key, start_server

BOT_ID = 777000111


def bot_user(first_name: str = "Net Bot") -> types.User:
    return types.User(
        id=BOT_ID,
        is_self=True,
        bot=True,
        bot_info_version=1,
        access_hash=1,
        first_name=first_name,
        username="netbot",
    )


class NetDispatcher:
    """Answers the bot connect sequence and a few test hooks; records every call."""

    def __init__(self) -> None:
        self.port = 0
        self.authorized: set[int] = set()
        self.calls: Counter[str] = Counter()
        self.contexts: list[CallContext] = []
        self.app_log_sizes: list[int] = []
        self.slow = asyncio.Event()

    async def invoke(self, ctx: CallContext, request: TLRequest) -> TLObject:
        name = type(request).__name__
        self.calls[name] += 1
        self.contexts.append(ctx)
        handler = getattr(self, f"_{name}", None)
        if handler is None:
            raise RpcError(400, f"METHOD_NOT_IMPLEMENTED_{name.upper()}")
        return await handler(ctx, request)

    def _require_login(self, ctx: CallContext) -> None:
        if ctx.auth_key_id not in self.authorized:
            raise RpcError(401, "AUTH_KEY_UNREGISTERED")

    async def _GetConfigRequest(self, ctx: CallContext, request: TLRequest) -> TLObject:
        now = dt.datetime.now(dt.UTC)
        return types.Config(
            date=now, expires=now + dt.timedelta(hours=1), test_mode=False, this_dc=2,
            dc_options=[types.DcOption(id=2, ip_address="127.0.0.1", port=self.port)],
            dc_txt_domain_name="localhost", chat_size_max=200, megagroup_size_max=200000,
            forwarded_count_max=100, online_update_period_ms=210000,
            offline_blur_timeout_ms=5000, offline_idle_timeout_ms=30000,
            online_cloud_timeout_ms=300000, notify_cloud_delay_ms=30000,
            notify_default_delay_ms=1500, push_chat_period_ms=60000, push_chat_limit=2,
            edit_time_limit=172800, revoke_time_limit=2147483647,
            revoke_pm_time_limit=2147483647, rating_e_decay=2419200,
            stickers_recent_limit=200, channels_read_media_period=604800,
            call_receive_timeout_ms=20000, call_ring_timeout_ms=90000,
            call_connect_timeout_ms=30000, call_packet_timeout_ms=10000,
            me_url_prefix="https://t.me/", caption_length_max=1024,
            message_length_max=4096, webfile_dc_id=2,
        )  # fmt: skip

    async def _GetUsersRequest(self, ctx: CallContext, request: TLRequest) -> list[TLObject]:
        self._require_login(ctx)
        # A long name makes this answer big enough to come back gzip_packed.
        wanted = request.id[0]
        return [bot_user("x" * 4000 if isinstance(wanted, types.InputUser) else "Net Bot")]

    async def _ImportBotAuthorizationRequest(
        self, ctx: CallContext, request: TLRequest
    ) -> TLObject:
        if request.bot_auth_token != "1:x":
            raise RpcError(400, "ACCESS_TOKEN_INVALID")
        self.authorized.add(ctx.auth_key_id)
        return types.auth.Authorization(user=bot_user())

    async def _GetStateRequest(self, ctx: CallContext, request: TLRequest) -> TLObject:
        self._require_login(ctx)
        return types.updates.State(
            pts=1, qts=0, date=dt.datetime.now(dt.UTC), seq=1, unread_count=0
        )

    async def _GetDifferenceRequest(self, ctx: CallContext, request: TLRequest) -> TLObject:
        self._require_login(ctx)
        return types.updates.DifferenceEmpty(date=dt.datetime.now(dt.UTC), seq=1)

    async def _SaveAppLogRequest(self, ctx: CallContext, request: TLRequest) -> bool:
        self.app_log_sizes.append(sum(len(e.data.value) for e in request.events))
        return True

    async def _GetNearestDcRequest(self, ctx: CallContext, request: TLRequest) -> TLObject:
        await self.slow.wait()  # a call that hangs until the test lets it go
        return types.NearestDc(country="ZZ", this_dc=2, nearest_dc=2)

    async def _GetAppConfigRequest(self, ctx: CallContext, request: TLRequest) -> TLObject:
        raise ZeroDivisionError("a bug inside the world")


@pytest.fixture(scope="session")
def net_rsa_key(tmp_path_factory: pytest.TempPathFactory) -> object:
    public = Path(tmp_path_factory.mktemp("rsa")) / "public.pem"
    key = load_or_create_rsa_key(None, str(public))
    telethon_rsa.add_key(public.read_text(), old=False)
    return key


@pytest.fixture
def net_keys() -> KeyStore:
    return KeyStore()


@pytest.fixture
def net_dispatcher() -> NetDispatcher:
    return NetDispatcher()


@pytest.fixture
async def net_server(
    net_rsa_key: object, net_keys: KeyStore, net_dispatcher: NetDispatcher
) -> AsyncIterator[MTProtoServer]:
    server = await start_server(
        "127.0.0.1", 0, dispatcher=net_dispatcher, rsa_key=net_rsa_key, keys=net_keys
    )
    net_dispatcher.port = server.port
    yield server
    await server.close()


MakeClient = Callable[..., TelegramClient]


@pytest.fixture
async def net_client(net_server: MTProtoServer) -> AsyncIterator[MakeClient]:
    """A factory of Telethon clients for the server (disconnected at teardown)."""
    clients: list[TelegramClient] = []

    def make(
        session: str | StringSession | None = None,
        connection: type[Connection] = ConnectionTcpFull,
        **kwargs: object,
    ) -> TelegramClient:
        sess = session if isinstance(session, StringSession) else StringSession(session)
        sess.set_dc(2, "127.0.0.1", net_server.port)
        kwargs.setdefault("request_retries", 0)
        kwargs.setdefault("receive_updates", False)
        client = TelegramClient(sess, api_id=1, api_hash="x", connection=connection, **kwargs)
        clients.append(client)
        return client

    yield make
    await asyncio.gather(*(c.disconnect() for c in clients if c.is_connected()))
