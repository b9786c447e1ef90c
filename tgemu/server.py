"""Public entry of the MTProto server: ``start_server`` plus what it needs (the RSA key
and the auth-key store). ``python -m tgemu`` wires these to the world's dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from telethon.tl.tlobject import TLObject

from tgemu.crypto.rsa import RsaDecryptor, load_or_create_rsa_key
from tgemu.dcs import DcRules, KeyPresence
from tgemu.network.connection import Connection, ServerParts
from tgemu.network.keystore import KeyStore, ServerAuthKey
from tgemu.network.session import MsgIdClock, Outgoing
from tgemu.rpc import Dispatcher

__all__ = [
    "KeyStore",
    "MTProtoServer",
    "ServerAuthKey",
    "load_or_create_rsa_key",
    "start_server",
]

log = logging.getLogger("tgemu.network")


class MTProtoServer:
    def __init__(self, parts: ServerParts) -> None:
        self._parts = parts
        self._server: asyncio.Server | None = None
        self._connections: set[Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self.port = 0
        self.dc_id = parts.dc_id

    @property
    def connections(self) -> int:
        """Client connections open right now."""
        return len(self._connections)

    async def _listen(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._accept, host, port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(self._parts, next(self._ids), reader, writer)
        self._connections.add(conn)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await conn.serve()
        finally:
            self._connections.discard(conn)
            self._tasks.discard(task)

    def drop_connections(self) -> int:
        """Cut every client socket now, as a network failure would; returns how many."""
        dropped = list(self._connections)
        for conn in dropped:
            conn.abort()
        return len(dropped)

    def push(self, auth_key_id: int, updates: TLObject) -> int:
        """Send an ``Updates`` object to every connection using that (canonical) auth
        key id, as Telegram pushes updates; returns how many connections got it."""
        body = bytes(updates)
        sent = 0
        for conn in self._connections:
            if conn.auth_key_id == auth_key_id:
                conn.send(Outgoing(body, content_related=True, response=False))
                sent += 1
        return sent

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.cancel_calls()
            conn.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._server.wait_closed()


async def start_server(
    host: str,
    port: int,
    *,
    dispatcher: Dispatcher,
    rsa_key: RSAPrivateKey,
    keys: KeyStore,
    dc_id: int = 2,
    rules: DcRules | None = None,
    presence: KeyPresence | None = None,
    clock: MsgIdClock | None = None,
) -> MTProtoServer:
    """Listen on ``host:port`` (0 = any free port; read ``.port``) and serve MTProto as
    DC ``dc_id``. The listeners of one emulator share ``keys``, ``rules``, ``presence``
    and ``clock``."""
    parts = ServerParts(
        dispatcher=dispatcher,
        keys=keys,
        rsa=RsaDecryptor(rsa_key),
        clock=clock or MsgIdClock(),
        dc_id=dc_id,
        rules=rules or DcRules(),
        presence=presence,
    )
    server = MTProtoServer(parts)
    server.dc_id = dc_id
    await server._listen(host, port)
    log.info("MTProto server for DC %d listening on %s:%d", dc_id, host, server.port)
    return server
