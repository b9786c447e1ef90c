"""The hourly rights sweeps (SPEC §5): is each ``active`` binding's bot still an admin
that can post; has each ``new`` one been granted the rights yet?

One sweep loads its bindings, groups them by bot and runs every bot's share at once
(shares.BotShare; the gateway paces each bot, and its client pool lets the bots past
its cap wait for a client). The Telegram calls run without holding a database
connection; each bot's answers are then written in one short transaction,
through the same rule as ``check_binding`` (rights.apply_rights). Bindings whose check
may change other rows (an invite link to attach, a numeric id to adopt) go through
``check_binding`` itself. What a share could not check (FLOOD_WAIT, Telegram
unreachable, or a database that did not answer in time for the share's write) is
enqueued again as CHECK_BINDINGS after the wait, in the task's unit of work, so it goes
out only once the sweep's own work is committed. Every session the sweep opens passes
the process's fleet gate (db.SessionGate, ``BOTMGR_SWEEP_DB_SESSIONS``): thousands of
bots queue there, not in the connection pool.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement

from botmgr.bots import service as bots
from botmgr.channels.activation import binding_activated
from botmgr.channels.failover import RESTORED, fail_over_lost
from botmgr.channels.links import channel_ref
from botmgr.channels.rights import apply_rights, check_binding, needs_session
from botmgr.db import SessionGate, is_busy
from botmgr.models import (
    Binding,
    BindingEvent,
    BindingStatus,
    Bot,
    BotStatus,
    Channel,
    InvalidCause,
)
from botmgr.outcomes import Status
from botmgr.security import Cipher, bot_account
from botmgr.shares import SKIPPED, BotShare, run_shares
from botmgr.tasks.names import CHECK_BINDINGS, RetryPolicy
from botmgr.telegram.gateway import ChannelRef, ChannelUnresolvable, Gateway, NotAdmin, Rights
from botmgr.uow import UnitOfWork
from botmgr.webhooks import events
from botmgr.webhooks.events import Event

log = logging.getLogger(__name__)
NEVER_GRANTED = "admin rights never granted"


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
    moved: list[tuple[str, list[int]]] = field(default_factory=list)  # (owner's queue, ids)
    status = Status.ok

    def body(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "activated": self.activated,
            "invalidated": self.invalidated,
            "expired": self.expired,
            "bots_invalidated": self.bots_invalidated,
            "postponed": sum(len(ids) for ids, _ in self.postponed),
            "moved": sum(len(ids) for _, ids in self.moved),
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
        .returning(Binding.id)
    )
    expired = list(result.scalars())
    await events.binding_event(session, Event.binding_invalid, expired)
    return len(expired)


def _wanted(statuses: tuple[BindingStatus, ...]) -> ColumnElement[bool]:
    """The bindings a sweep over ``statuses`` checks."""
    wanted: ColumnElement[bool] = Binding.status.in_(statuses)
    if BindingStatus.new in statuses:  # invalid for lack of rights: checked like new ones
        wanted = or_(
            wanted,
            and_(
                Binding.status == BindingStatus.invalid,
                Binding.cause == InvalidCause.rights.value,
            ),
        )
    return wanted


async def _targets(
    session: AsyncSession, statuses: tuple[BindingStatus, ...], binding_ids: list[int] | None
) -> tuple[dict[int, Bot], dict[int, list[Target]]]:
    stmt = (
        select(Binding.id, Binding.status, Binding.bot_id, Channel)
        .join(Channel, Channel.id == Binding.channel_id)
        .where(_wanted(statuses))
        .order_by(Binding.id)
    )
    if binding_ids is not None:
        stmt = stmt.where(Binding.id.in_(binding_ids))
    per_bot: dict[int, list[Target]] = {}
    for binding_id, status, bot_id, channel in await session.execute(stmt):
        target = Target(
            binding_id, BindingStatus(status), channel_ref(channel), not needs_session(channel)
        )
        per_bot.setdefault(bot_id, []).append(target)
    found = await session.execute(select(Bot).where(Bot.id.in_(list(per_bot))))
    return {bot.id: bot for bot in found.scalars()}, per_bot


@dataclass(slots=True)
class _Tally:
    """What one bot's write changed: added to the report once it is committed."""

    checked: int = 0
    activated: int = 0
    invalidated: int = 0

    def add_to(self, report: SweepReport) -> None:
        report.checked += self.checked
        report.activated += self.activated
        report.invalidated += self.invalidated


class _Sweeper:
    def __init__(
        self, sessions: SessionGate, gateway: Gateway, cipher: Cipher, policy: RetryPolicy
    ) -> None:
        self.sessions = sessions
        self.gateway, self.cipher, self.policy = gateway, cipher, policy

    async def _check_one(self, binding_id: int) -> bool:
        """A binding only ``check_binding`` can answer, in its own transaction."""
        async with self.sessions.session() as session:
            await check_binding(session, binding_id, gateway=self.gateway, cipher=self.cipher)
        return True

    async def bot_share(self, bot: Bot, targets: list[Target], report: SweepReport) -> None:
        share = BotShare(self.policy)
        done: set[int] = set()  # checked in transactions of their own: committed
        answers: dict[int, Rights | str] = {}
        try:
            slow_checked = await self._ask(bot, targets, share, answers, done)
            if share.token_error is not None:
                async with self.sessions.session() as session:
                    await bots.token_rejected(session, bot.id, share.token_error)
                report.bots_invalidated += 1
                return
            lost = await self._write(bot.id, targets, answers, report)
        except Exception as exc:
            if not is_busy(exc):
                raise
            # Only this bot's share waits; the other bots' answers are written.
            share.postpone_all(t.binding_id for t in targets if t.binding_id not in done)
            report.postponed += share.postponed_groups()
            return
        report.checked += slow_checked
        report.postponed += share.postponed_groups()
        if share.moved_to is not None:  # another worker owns the bot: its share goes there
            report.moved.append((share.moved_to, sorted(share.moved)))
        for binding_id in lost:  # each in its own transaction, under the row lock
            try:
                async with self.sessions.session() as session:
                    await fail_over_lost(
                        session, binding_id, gateway=self.gateway, cipher=self.cipher
                    )
            except Exception as exc:
                if not is_busy(exc):
                    raise
                # Written invalid (rights) already: CHECK_NEW re-checks it hourly.
                log.warning("binding %s: failover skipped, database busy", binding_id)

    async def _ask(
        self,
        bot: Bot,
        targets: list[Target],
        share: BotShare,
        answers: dict[int, Rights | str],
        done: set[int],
    ) -> int:
        """Ask Telegram about every target; how many ``check_binding`` answered."""
        if bot.status != BotStatus.active:
            for target in targets:  # check_binding marks them invalid ("bot is …")
                await self._check_one(target.binding_id)
                done.add(target.binding_id)
            return 0
        account = bot_account(bot, self.cipher)

        async def ask(target: Target) -> Rights | str:
            try:
                return await self.gateway.get_rights(account, target.ref)
            except (NotAdmin, ChannelUnresolvable) as exc:
                return exc.reason

        async def one(target: Target) -> None:
            if target.simple:
                answer = await share.call(target.binding_id, lambda: ask(target))
                if answer is not SKIPPED:
                    answers[target.binding_id] = answer
            else:
                ran = await share.call(
                    target.binding_id, lambda: self._check_one(target.binding_id)
                )
                if ran is not SKIPPED:
                    done.add(target.binding_id)

        await share.each(targets, one)
        return len(done)

    async def _write(
        self,
        bot_id: int,
        targets: list[Target],
        answers: dict[int, Rights | str],
        report: SweepReport,
    ) -> list[int]:
        """All answers of one bot in one statement (executemany). A row whose status
        changed since the sweep read it (unbound, rebound, checked by another task) is
        left alone: the WHERE on the status read (and the bot) makes the stale answer a
        no-op. Those whose rights are back get a history entry; the ones that lost their
        rights are answered, for the caller to fail over."""
        if not answers:
            return []
        rows: list[dict[str, object]] = []
        tally = _Tally()
        activated: list[int] = []
        lost: list[int] = []
        restored: list[tuple[int, int]] = []
        checked_at = _now()
        for target in targets:
            answer = answers.get(target.binding_id)
            if answer is None:
                continue
            outcome = Binding(status=target.status)  # transient: the rule, no ORM load
            apply_rights(outcome, answer)
            tally.checked += 1
            if target.status == outcome.status == BindingStatus.invalid:
                continue  # still without rights: its reason and link stay
            rows.append(
                {
                    "b_id": target.binding_id,
                    "b_seen": target.status,
                    "b_bot": bot_id,
                    "b_status": outcome.status,
                    "b_reason": outcome.reason,
                    "b_cause": outcome.cause,
                    "b_checked": checked_at,
                }
            )
            if outcome.status != target.status:
                if outcome.status == BindingStatus.active:
                    tally.activated += 1
                    activated.append(target.binding_id)
                    if target.status == BindingStatus.invalid:
                        restored.append((target.binding_id, bot_id))
                else:
                    tally.invalidated += 1
                    if target.status == BindingStatus.active:
                        lost.append(target.binding_id)
        table = cast(Table, Binding.__table__)  # declared as FromClause; a Table here
        stmt = (
            update(table)
            .where(
                table.c.id == bindparam("b_id"),
                table.c.status == bindparam("b_seen"),
                table.c.bot_id == bindparam("b_bot"),  # not moved to another bot meanwhile
            )
            .values(
                status=bindparam("b_status"),
                reason=bindparam("b_reason"),
                cause=bindparam("b_cause"),
                last_checked_at=bindparam("b_checked"),
                updated_at=func.now(),
            )
        )
        async with self.sessions.session() as session:
            if rows:
                await session.execute(stmt, rows)
            await binding_activated(session, activated)  # one statement for all
            for binding_id, holder in restored:
                session.add(BindingEvent(binding_id=binding_id, to_bot_id=holder, why=RESTORED))
        tally.add_to(report)
        return lost


async def sweep(
    unit: UnitOfWork,
    sessions: SessionGate,
    *,
    gateway: Gateway,
    cipher: Cipher,
    policy: RetryPolicy,
    statuses: tuple[BindingStatus, ...],
    binding_ids: list[int] | None = None,
    ttl_days: float | None = None,
    bots_at_once: int | None = None,
    scatter: bool = False,
) -> SweepReport:
    """Check the rights behind every binding in ``statuses`` (or those of
    ``binding_ids``); with ``ttl_days``, expire old ``new`` bindings first. At most
    ``bots_at_once`` bots' shares run at a time (shares.run_shares). With ``scatter``
    (the fleet-wide sweeps), when the bots belong to several worker processes, each
    one's bindings become one CHECK_BINDINGS task on its queue, this process's own
    included, so the parts run at once instead of after this one."""
    report = SweepReport()
    async with sessions.session() as session:
        if ttl_days is not None:
            report.expired = await expire_new(session, ttl_days)
        if scatter:  # the bindings by bot, ids only: no channel rows for a dispatch
            by_bot: dict[int, list[int]] = {}
            stmt = select(Binding.id, Binding.bot_id).where(_wanted(statuses))
            for binding_id, bot_id in await session.execute(stmt.order_by(Binding.id)):
                by_bot.setdefault(bot_id, []).append(binding_id)
            parts = await gateway.place(list(by_bot)) if by_bot else None
            if parts is not None:
                for queue, bot_ids in parts.items():
                    ids = sorted(i for bot_id in bot_ids for i in by_bot.get(bot_id, ()))
                    report.moved.append((queue, ids))
                    unit.enqueue(CHECK_BINDINGS, ids, queue=queue)
                return report
        found, per_bot = await _targets(session, statuses, binding_ids)
    sweeper = _Sweeper(sessions, gateway, cipher, policy)
    await run_shares(
        (sweeper.bot_share(found[bot_id], targets, report) for bot_id, targets in per_bot.items()),
        bots_at_once,
    )
    for ids, seconds in report.postponed:
        unit.enqueue(CHECK_BINDINGS, ids, countdown=seconds)
    for queue, ids in report.moved:
        unit.enqueue(CHECK_BINDINGS, ids, queue=queue)
    return report
