"""Where Telethon sessions are kept (encrypted, on the bot row), what else the gateway
must remember of a bot across processes (channel access hashes, a login flood wait), and
how the gateway is built from settings. The gateway must be created on the event loop
that will use it."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from botmgr.db import MEMORY_SESSIONS, SessionGate, SessionMaker
from botmgr.models import Bot, BotChannelAccess
from botmgr.security import Cipher
from botmgr.settings import Settings
from botmgr.telegram.gateway import BotMemory, SessionStore
from botmgr.telegram.ownership import Ownership

if TYPE_CHECKING:
    from botmgr.telegram.telethon_gateway import TelethonGateway


class DbSessionStore:
    """Writes a (re)newed session to ``bots.session_encrypted`` in its own transaction.

    Callers must not hold a lock on the bot row while calling the gateway, or this
    write would wait for them (until lock_timeout). At most ``db.MEMORY_SESSIONS`` of
    these short transactions run at once: the room db.worker_pool_size keeps for them,
    so a Telegram call never waits for the sessions that wait for Telegram."""

    def __init__(self, sessionmaker: SessionMaker, cipher: Cipher) -> None:
        self._gate = SessionGate(sessionmaker, MEMORY_SESSIONS)
        self._cipher = cipher

    async def save(self, bot_id: int, session: str) -> None:
        async with self._gate.session() as db:
            await db.execute(
                update(Bot)
                .where(Bot.id == bot_id)
                .values(session_encrypted=self._cipher.encrypt(session))
            )

    # -- gateway.BotMemory: each write in its own short transaction, like save() ------
    async def channel_hashes(self, bot_id: int, tg_bot_id: int) -> dict[int, int]:
        async with self._gate.session() as db:
            rows = await db.execute(
                select(BotChannelAccess.tg_channel_id, BotChannelAccess.access_hash).where(
                    BotChannelAccess.bot_id == bot_id, BotChannelAccess.tg_bot_id == tg_bot_id
                )
            )
            return {channel_id: access_hash for channel_id, access_hash in rows.all()}

    async def save_channel_hash(
        self, bot_id: int, tg_bot_id: int, tg_channel_id: int, access_hash: int
    ) -> None:
        values = {
            "bot_id": bot_id,
            "tg_channel_id": tg_channel_id,
            "tg_bot_id": tg_bot_id,
            "access_hash": access_hash,
        }
        statement = insert(BotChannelAccess).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[BotChannelAccess.bot_id, BotChannelAccess.tg_channel_id],
            set_={"tg_bot_id": tg_bot_id, "access_hash": access_hash, "updated_at": func.now()},
        )
        async with self._gate.session() as db:
            await db.execute(statement)

    async def forget_channel_hash(self, bot_id: int, tg_channel_id: int) -> None:
        async with self._gate.session() as db:
            await db.execute(
                delete(BotChannelAccess).where(
                    BotChannelAccess.bot_id == bot_id,
                    BotChannelAccess.tg_channel_id == tg_channel_id,
                )
            )

    async def login_flood(self, bot_id: int, not_before: datetime) -> None:
        async with self._gate.session() as db:
            # Never shorten a wait another process stored meanwhile.
            await db.execute(
                update(Bot)
                .where(Bot.id == bot_id)
                .values(login_not_before=func.greatest(Bot.login_not_before, not_before))
            )


def make_gateway(
    settings: Settings,
    sessionmaker: SessionMaker,
    cipher: Cipher,
    ownership: Ownership | None = None,
) -> TelethonGateway:
    store = DbSessionStore(sessionmaker, cipher)
    return gateway_for(settings, store, store, ownership)


def gateway_for(
    settings: Settings,
    store: SessionStore,
    memory: BotMemory | None,
    ownership: Ownership | None = None,
) -> TelethonGateway:
    """The Telethon gateway from settings; ``memory`` None: nothing outlives the process;
    ``ownership`` None: every bot is this process's (no fleet)."""
    from botmgr.telegram.telethon_gateway import TelethonGateway

    return TelethonGateway(
        api_id=settings.tg_api_id,
        api_hash=settings.tg_api_hash.get_secret_value(),
        server=settings.tg_server_address,
        public_key_pem=settings.tg_public_key_pem(),
        session_store=store,
        memory=memory,
        max_clients=settings.tg_max_clients,
        client_idle_seconds=settings.tg_client_idle_seconds,
        local_addr=settings.tg_local_addr,
        ownership=ownership,
    )


class MemorySessionStore:
    """For one-off runs without a database (``botmgr doctor``): sessions are forgotten."""

    def __init__(self) -> None:
        self.sessions: dict[int, str] = {}

    async def save(self, bot_id: int, session: str) -> None:
        self.sessions[bot_id] = session
