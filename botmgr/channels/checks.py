"""The hourly rights sweeps (SPEC §5): is each ``active`` binding's bot still an admin
that can post; has each ``new`` one been granted the rights yet?

One sweep loads its bindings, groups them by bot and runs every bot's share at once on
the worker's loop, each bot paced by its own Lane (pacing.py). The Telegram calls run
without holding a database connection; each bot's answers are then written in one short
transaction, through the same rule as ``check_binding`` (jobs.apply_rights). Bindings
whose check may change other rows (an invite link to attach, a numeric id to adopt) go
through ``check_binding`` itself. A FLOOD_WAIT stops only that bot's share: what it has
not checked comes back as ``postponed`` for the caller to enqueue after the wait.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.bots import service as bots
from botmgr.channels import jobs
from botmgr.channels.pacing import Lane, total_limit
from botmgr.db import SessionMaker, task_session
from botmgr.models import Binding, BindingStatus, Bot, BotStatus, Channel
from botmgr.security import Cipher
from botmgr.tasks.results import RetryLater, TaskResult
from botmgr.telegram.gateway import (
    ChannelRef,
    ChannelUnresolvable,
    FloodWait,
    Gateway,
    NotAdmin,
    Rights,
    TelegramUnavailable,
    TokenInvalid,
)

NEVER_GRANTED = "admin rights never granted"
UNREACHABLE_RETRY = 30  # seconds before re-checking what Telegram did not answer


class CheckSettings(BaseSettings):
    """The checks' own knobs (BOTMGR_ environment, like Settings)."""

    model_config = SettingsConfigDict(env_prefix="BOTMGR_", env_file=".env", extra="ignore")

    new_binding_ttl_days: float = Field(default=7, gt=0)


@dataclass(frozen=True, slots=True)
class Target:
    binding_id: int
    status: BindingStatus
    ref: ChannelRef
    simple: bool  # answerable by one get_rights call


@dataclass(slots=True)
class SweepReport:
    checked: int = 0
    activated: int = 0
    invalidated: int = 0
    expired: int = 0
    bots_invalidated: int = 0
    postponed: list[tuple[list[int], int]] = field(default_factory=list)  # (ids, seconds)

    def result(self) -> TaskResult:
        return {
            "status_code": 200,
            "body": {
                "checked": self.checked,
                "activated": self.activated,
                "invalidated": self.invalidated,
                "expired": self.expired,
                "bots_invalidated": self.bots_invalidated,
                "postponed": sum(len(ids) for ids, _ in self.postponed),
            },
        }


def _now() -> datetime:
    return datetime.now(UTC)


async def expire_new(session: AsyncSession, ttl_days: float) -> int:
    """``new`` bindings older than the limit become ``invalid``: nobody made the bot an
    admin, and the channel should not stay reserved for it forever."""
    result = await session.execute(
        update(Binding)
        .where(
            Binding.status == BindingStatus.new,
            Binding.created_at < _now() - timedelta(days=ttl_days),
        )
        .values(status=BindingStatus.invalid, reason=NEVER_GRANTED, last_checked_at=_now())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def _targets(
    session: AsyncSession, statuses: tuple[BindingStatus, ...], binding_ids: list[int] | None
) -> tuple[dict[int, Bot], dict[int, list[Target]]]:
    stmt = (
        select(Binding.id, Binding.status, Binding.bot_id, Channel)
        .join(Channel, Channel.id == Binding.channel_id)
        .where(Binding.status.in_(statuses))
        .order_by(Binding.id)
    )
    if binding_ids is not None:
        stmt = stmt.where(Binding.id.in_(binding_ids))
    per_bot: dict[int, list[Target]] = {}
    for binding_id, status, bot_id, channel in await session.execute(stmt):
        per_bot.setdefault(bot_id, []).append(
            Target(
                binding_id,
                BindingStatus(status),
                jobs.channel_ref(channel),
                simple=not jobs.needs_session(channel),
            )
        )
    found = await session.execute(select(Bot).where(Bot.id.in_(list(per_bot))))
    return {bot.id: bot for bot in found.scalars()}, per_bot


class _Share:
    """One bot's part of a sweep."""

    def __init__(
        self,
        bot: Bot,
        targets: list[Target],
        *,
        lane: Lane,
        gateway: Gateway,
        cipher: Cipher,
        sessionmaker: SessionMaker,
    ) -> None:
        self.bot, self.targets, self.lane = bot, targets, lane
        self.gateway, self.cipher, self.sessionmaker = gateway, cipher, sessionmaker
        self.answers: dict[int, Rights | str] = {}
        self.left: dict[int, int] = {}  # binding id → seconds to wait before retrying
        self.stop_wait: int | None = None  # a FLOOD_WAIT stopped this share
        self.token_error: str | None = None
        self.slow_done = 0

    async def run(self, report: SweepReport) -> None:
        if self.bot.status != BotStatus.active:
            await self._slow_all()  # check_binding marks them invalid ("bot is …")
            return
        account = bots.account(self.bot, self.cipher)
        await self.lane.each(self.targets, lambda t: self._one(t, account))
        if self.token_error is not None:
            async with task_session(self.sessionmaker) as session:
                bot = await bots.get(session, self.bot.id, lock=True)
                await bots.invalidate(
                    session,
                    bot,
                    status=BotStatus.invalid,
                    reason=f"token rejected: {self.token_error}",
                )
            report.bots_invalidated += 1
            return
        await self._write(report)
        for target in self.targets:
            if target.binding_id not in self.answers and self.stop_wait is not None:
                self.left.setdefault(target.binding_id, self.stop_wait)
        report.checked += self.slow_done
        by_wait: dict[int, list[int]] = {}
        for binding_id, seconds in self.left.items():
            by_wait.setdefault(seconds, []).append(binding_id)
        report.postponed += [(sorted(ids), seconds) for seconds, ids in by_wait.items()]

    def _stopped(self) -> bool:
        return self.stop_wait is not None or self.token_error is not None

    async def _one(self, target: Target, account: object) -> None:
        if not target.simple:
            await self._slow(target.binding_id)
            return

        async def ask() -> Rights | str | None:
            if self._stopped():
                return None
            try:
                return await self.gateway.get_rights(account, target.ref)  # type: ignore[arg-type]
            except (NotAdmin, ChannelUnresolvable) as exc:
                return exc.reason

        try:
            answer = await self.lane.call(ask)
        except FloodWait as exc:
            self.stop_wait = max(self.stop_wait or 0, max(1, exc.seconds))
            return
        except TokenInvalid as exc:
            self.token_error = exc.reason
            return
        except TelegramUnavailable:
            self.left[target.binding_id] = UNREACHABLE_RETRY
            return
        if answer is not None:
            self.answers[target.binding_id] = answer

    async def _slow(self, binding_id: int) -> None:
        async def check() -> None:
            if self._stopped():
                return
            async with task_session(self.sessionmaker) as session:
                await jobs.check_binding(
                    session, binding_id, gateway=self.gateway, cipher=self.cipher
                )
            self.slow_done += 1

        try:
            await self.lane.call(check)
        except RetryLater as exc:
            self.left[binding_id] = max(1, exc.seconds)

    async def _slow_all(self) -> None:
        for target in self.targets:
            async with task_session(self.sessionmaker) as session:
                await jobs.check_binding(
                    session, target.binding_id, gateway=self.gateway, cipher=self.cipher
                )

    async def _write(self, report: SweepReport) -> None:
        """All answers of this bot in one statement (executemany). A row whose status
        changed since the sweep read it (unbound, rebound, checked by another task) is
        left alone: the WHERE on the status read makes the stale answer a no-op."""
        if not self.answers:
            return
        rows: list[dict[str, object]] = []
        checked_at = _now()
        for target in self.targets:
            answer = self.answers.get(target.binding_id)
            if answer is None:
                continue
            outcome = Binding(status=target.status)  # transient: the rule, no ORM load
            jobs.apply_rights(outcome, answer)
            rows.append(
                {
                    "b_id": target.binding_id,
                    "b_seen": target.status,
                    "b_status": outcome.status,
                    "b_reason": outcome.reason,
                    "b_checked": checked_at,
                }
            )
            report.checked += 1
            if outcome.status != target.status:
                if outcome.status == BindingStatus.active:
                    report.activated += 1
                else:
                    report.invalidated += 1
        table = Binding.__table__
        stmt = (
            update(table)
            .where(table.c.id == bindparam("b_id"), table.c.status == bindparam("b_seen"))
            .values(
                status=bindparam("b_status"),
                reason=bindparam("b_reason"),
                last_checked_at=bindparam("b_checked"),
                updated_at=func.now(),
            )
        )
        async with task_session(self.sessionmaker) as session:
            await session.execute(stmt, rows)


async def sweep(
    sessionmaker: SessionMaker,
    *,
    gateway: Gateway,
    cipher: Cipher,
    statuses: tuple[BindingStatus, ...],
    binding_ids: list[int] | None = None,
    ttl_days: float | None = None,
) -> SweepReport:
    """Check the rights behind every binding in ``statuses`` (or those of
    ``binding_ids``); with ``ttl_days``, expire old ``new`` bindings first."""
    report = SweepReport()
    async with task_session(sessionmaker) as session:
        if ttl_days is not None:
            report.expired = await expire_new(session, ttl_days)
        found, per_bot = await _targets(session, statuses, binding_ids)
    total = total_limit()
    shares = [
        _Share(
            found[bot_id],
            targets,
            lane=Lane(total),
            gateway=gateway,
            cipher=cipher,
            sessionmaker=sessionmaker,
        )
        for bot_id, targets in per_bot.items()
    ]
    await asyncio.gather(*(share.run(report) for share in shares))
    return report
