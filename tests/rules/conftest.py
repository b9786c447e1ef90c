"""Tests of the service's rules: real PostgreSQL (the session's migrated database,
truncated per test), the in-memory FakeGateway instead of Telegram, and a publisher that
records jobs instead of sending them. No worker, no tgemu: these run in seconds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TypeVar

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from botmgr.channels import rights, sweep
from botmgr.db import SessionGate, SessionMaker, make_sessionmaker
from botmgr.models import Binding, BindingStatus, Bot, BotStatus, Channel, ChannelStats, DeferredJob
from botmgr.outcomes import Refused
from botmgr.security import Cipher, token_tail
from botmgr.stats import collect
from botmgr.tasks.names import RetryPolicy
from botmgr.telegram.fake import FakeChannel, FakeGateway
from botmgr.uow import Job, Publisher, UnitOfWork, unit_of_work

M = TypeVar("M")
DAY = date(2026, 11, 30)  # the day the stats rules collect


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


class RecordingPublisher(Publisher):
    """Keeps what would be sent; ``refuse`` makes it behave as a broker that is down."""

    def __init__(self) -> None:
        self.sent: list[Job] = []
        self.refuse = False

    async def publish(self, job: Job) -> None:
        if self.refuse:
            raise ConnectionError("broker down")
        self.sent.append(job)


@dataclass
class World:
    """The test's database, fake Telegram and queue, with helpers to fill them."""

    sessionmaker: SessionMaker
    fake: FakeGateway
    cipher: Cipher
    publisher: RecordingPublisher
    policy: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_retries=3))

    def unit(self) -> AbstractAsyncContextManager[UnitOfWork]:
        return unit_of_work(self.sessionmaker, self.publisher)

    async def bot(self, *, status: BotStatus = BotStatus.active) -> tuple[Bot, str]:
        token = self.fake.add_bot()
        tg_id = int(token.partition(":")[0])
        bot = Bot(
            tg_id=tg_id,
            alias="",
            description="",
            name=self.fake.bots[token].username,
            username=self.fake.bots[token].username,
            first_name="Fake",
            token_encrypted=self.cipher.encrypt(token),
            token_tail=token_tail(token),
            status=status,
        )
        async with self.sessionmaker() as session:
            session.add(bot)
            await session.commit()
        return bot, token

    async def binding(
        self, bot: Bot, channel: FakeChannel, status: BindingStatus = BindingStatus.active
    ) -> Binding:
        async with self.sessionmaker() as session:
            row = Channel(
                tg_id=channel.tg_id,
                title=channel.title,
                username=channel.username,
                access_hash=channel.access_hash,
                reference=str(channel.tg_id),
            )
            session.add(row)
            await session.flush()
            binding = Binding(bot_id=bot.id, channel_id=row.id, status=status)
            session.add(binding)
            await session.commit()
            return binding

    async def sweep(
        self,
        statuses: tuple[BindingStatus, ...] = (BindingStatus.active,),
        binding_ids: list[int] | None = None,
    ) -> sweep.SweepReport:
        """The rights sweep, as the hourly task runs it, in a unit of work."""
        async with self.unit() as unit:
            return await sweep.sweep(
                unit,
                SessionGate(self.sessionmaker, 4),
                gateway=self.fake,
                cipher=self.cipher,
                policy=self.policy,
                statuses=statuses,
                binding_ids=binding_ids,
                scatter=binding_ids is None,
            )

    async def collect(
        self, *, day: date = DAY, timezone: str = "UTC", channel_ids: list[int] | None = None
    ) -> collect.StatsReport:
        """The daily stats collection of ``day`` (or a part of it), in a unit of work."""
        async with self.unit() as unit:
            return await collect.collect(
                unit,
                SessionGate(self.sessionmaker, 4),
                gateway=self.fake,
                cipher=self.cipher,
                policy=self.policy,
                timezone=timezone,
                day=day,
                channel_ids=channel_ids,
            )

    async def check(self, binding_id: int) -> rights.BindingChecked | Refused:
        """check_binding (task CHECK_BINDING), committed."""
        async with self.sessionmaker() as session:
            outcome = await rights.check_binding(
                session, binding_id, gateway=self.fake, cipher=self.cipher
            )
            await session.commit()
        return outcome

    async def stats_rows(self) -> list[ChannelStats]:
        async with self.sessionmaker() as session:
            stmt = select(ChannelStats).order_by(ChannelStats.day, ChannelStats.channel_id)
            return list((await session.execute(stmt)).scalars())

    async def deferred(self) -> list[DeferredJob]:
        """The jobs stored to wait (longer than a countdown) for the reconciler."""
        async with self.sessionmaker() as session:
            stmt = select(DeferredJob).order_by(DeferredJob.id)
            return list((await session.execute(stmt)).scalars())

    async def get(self, model: type[M], pk: int) -> M:
        async with self.sessionmaker() as session:
            return await session.get_one(model, pk)


@pytest.fixture
async def world(db_engine: AsyncEngine, clean_db: None) -> AsyncIterator[World]:
    yield World(
        make_sessionmaker(db_engine),
        FakeGateway(),
        Cipher(Fernet.generate_key()),
        RecordingPublisher(),
    )
