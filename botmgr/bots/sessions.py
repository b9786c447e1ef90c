"""Where Telethon sessions are kept (encrypted, on the bot row) and how the gateway is
built from settings. The gateway must be created on the event loop that will use it."""

from __future__ import annotations

from sqlalchemy import update

from botmgr.db import SessionMaker
from botmgr.models import Bot
from botmgr.security import Cipher
from botmgr.settings import Settings
from botmgr.telegram.gateway import Gateway, SessionStore


class DbSessionStore:
    """Writes a (re)newed session to ``bots.session_encrypted`` in its own transaction.

    Callers must not hold a lock on the bot row while calling the gateway, or this
    write would wait for them forever."""

    def __init__(self, sessionmaker: SessionMaker, cipher: Cipher) -> None:
        self._sessionmaker = sessionmaker
        self._cipher = cipher

    async def save(self, bot_id: int, session: str) -> None:
        async with self._sessionmaker() as db:
            await db.execute(
                update(Bot)
                .where(Bot.id == bot_id)
                .values(session_encrypted=self._cipher.encrypt(session))
            )
            await db.commit()


def make_gateway(settings: Settings, sessionmaker: SessionMaker, cipher: Cipher) -> Gateway:
    return gateway_for(settings, DbSessionStore(sessionmaker, cipher))


def gateway_for(settings: Settings, store: SessionStore) -> Gateway:
    from botmgr.telegram.telethon_gateway import TelethonGateway

    return TelethonGateway(
        api_id=settings.tg_api_id,
        api_hash=settings.tg_api_hash.get_secret_value(),
        server=settings.tg_server_address,
        public_key_pem=settings.tg_public_key_pem(),
        session_store=store,
    )


class MemorySessionStore:
    """For one-off runs without a database (``botmgr doctor``): sessions are forgotten."""

    def __init__(self) -> None:
        self.sessions: dict[int, str] = {}

    async def save(self, bot_id: int, session: str) -> None:
        self.sessions[bot_id] = session
