"""Bot registry rules. Functions take the session first and never commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import case, func, literal_column, select, true, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from botmgr.audit.service import record
from botmgr.bots.schemas import BotIn, BotOut, BotPatch
from botmgr.errors import Conflict, Invalid, NotFound, Unavailable
from botmgr.models import IN_SERVICE, Binding, BindingStatus, Bot, BotStatus
from botmgr.outcomes import Status
from botmgr.pages import TOTAL, fetch_page, page_rows, row_columns
from botmgr.security import Cipher, bot_account, mask_parts, mask_token, token_tail
from botmgr.tasks.names import CHECK_BOT
from botmgr.telegram.gateway import (
    BotProfile,
    FloodWait,
    Gateway,
    TelegramError,
    TokenInvalid,
)
from botmgr.uow import UnitOfWork
from botmgr.webhooks import events
from botmgr.webhooks.events import Event


def now() -> datetime:
    return datetime.now(UTC)


async def _login(gateway: Gateway, token: str) -> BotProfile:
    try:
        profile = await gateway.login(token)
    except TokenInvalid as exc:
        raise Unavailable(f"Telegram rejected the bot token: {exc.reason}") from exc
    except FloodWait as exc:
        raise Unavailable(f"Telegram asks to wait {exc.seconds}s before logging in") from exc
    except TelegramError as exc:
        raise Unavailable(f"Bot can't connect to Telegram: {exc.reason}") from exc
    if str(profile.tg_id) != token.partition(":")[0]:
        raise Unavailable("Telegram reports a different bot id than the token carries")
    return profile


def _check_name(name: str | None, profile: BotProfile) -> None:
    # A mismatch is refused rather than stored: the operator named the wrong bot or
    # pasted the wrong token, and either way the registry would lie.
    if name and name.lower() != profile.username.lower():
        raise Invalid(
            f"name '{name}' does not match the bot's Telegram username '@{profile.username}'"
        )


async def register(
    session: AsyncSession, data: BotIn, *, gateway: Gateway, cipher: Cipher
) -> tuple[int, bool]:
    """Create the bot or update the one with the same Telegram id. Returns (id, new)."""
    profile = await _login(gateway, data.token)
    _check_name(data.name, profile)
    values = {
        "tg_id": profile.tg_id,
        "alias": data.alias,
        "description": data.description,
        "name": data.name or profile.username,
        "username": profile.username,
        "first_name": profile.first_name,
        "token_encrypted": cipher.encrypt(data.token),
        "token_tail": token_tail(data.token),
        "session_encrypted": cipher.encrypt(profile.session) if profile.session else None,
        "status": BotStatus.active.value,
        "status_reason": None,
        "last_checked_at": now(),
    }
    stmt = insert(Bot).values(**values)
    # xmax = 0 only on a freshly inserted row: tells "new" from "updated" in one
    # statement, race-free between two registrations of the same bot.
    upsert: ReturningInsert[int, bool] = stmt.on_conflict_do_update(
        index_elements=[Bot.tg_id],
        set_={k: stmt.excluded[k] for k in values if k != "tg_id"} | {"updated_at": func.now()},
    ).returning(Bot.id, literal_column("(xmax = 0)").label("inserted"))
    row = (await session.execute(upsert)).one()
    details = {"tg_id": profile.tg_id, "username": profile.username, "new": bool(row.inserted)}
    record(session, "bot.register", object_type="bot", object_id=row.id, details=details)
    return row.id, bool(row.inserted)


async def get(session: AsyncSession, bot_id: int, *, lock: bool = False) -> Bot:
    stmt = select(Bot).where(Bot.id == bot_id)
    if lock:
        # Locked reads re-read the row: what the session loaded earlier may be stale.
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    bot = (await session.execute(stmt)).scalar_one_or_none()
    if bot is None:
        raise NotFound(f"bot {bot_id} not found")
    return bot


def _refuse_deleted(bot: Bot) -> None:
    if bot.status == BotStatus.deleted:
        raise Conflict(f"bot {bot.id} is deleted; register it again with POST /bots/")


async def update_bot(
    session: AsyncSession, bot_id: int, data: BotPatch, *, gateway: Gateway, cipher: Cipher
) -> Bot:
    """PATCH: a new token is checked by a login *before* the row is locked, so no row
    lock is held while Telegram answers (a login may take the gateway's whole call
    timeout; everything that locks the bot would queue behind it, the worker's session
    writes included). The rule that keeps concurrent PATCHes safe: the row is written
    only under its lock, after the checks are made again on the row as locked; and a
    login's result (token, session, profile) is written whole, so the row always holds
    a token together with the session its own login made. Two PATCHes then serialize on
    the write and the later commit wins whole; one that finds the bot deleted meanwhile
    writes nothing (its login is simply not used)."""
    fields = data.model_fields_set
    _refuse_deleted(await get(session, bot_id))
    profile: BotProfile | None = None
    if "token" in fields and data.token is not None:
        profile = await _login(gateway, data.token)  # no lock held
    bot = await get(session, bot_id, lock=True)
    _refuse_deleted(bot)
    if profile is not None and data.token is not None:
        if profile.tg_id != bot.tg_id:
            raise Invalid("the new token belongs to another Telegram bot")
        _check_name(data.name if "name" in fields else None, profile)
        bot.token_encrypted = cipher.encrypt(data.token)
        bot.token_tail = token_tail(data.token)
        bot.session_encrypted = cipher.encrypt(profile.session) if profile.session else None
        bot.username, bot.first_name = profile.username, profile.first_name
        bot.status, bot.status_reason, bot.last_checked_at = BotStatus.active, None, now()
    elif "name" in fields and data.name and data.name.lower() != bot.username.lower():
        raise Invalid(
            f"name '{data.name}' does not match the bot's Telegram username '@{bot.username}'"
        )
    for field in ("alias", "description", "name"):
        value = getattr(data, field)
        if field in fields and value is not None and (value or field != "name"):
            setattr(bot, field, value)  # an empty name means "not given"
    shown: dict[str, Any] = {
        f: getattr(bot, f) for f in ("alias", "name", "description") if f in fields
    }
    details: dict[str, Any] = {
        "fields": sorted(fields),
        **shown,
    }  # "token" in fields: replaced (never shown)
    record(session, "bot.update", object_type="bot", object_id=bot.id, details=details)
    await session.flush()
    return bot


async def invalidate(session: AsyncSession, bot: Bot, *, status: BotStatus, reason: str) -> None:
    """Take the bot out of service; its bindings in service become invalid with ``reason``
    (bot.invalid — for an invalid token, not a deletion — and binding.invalid go out)."""
    was = bot.status
    bot.status, bot.status_reason, bot.last_checked_at = status, reason, now()
    lost = await session.execute(
        update(Binding)
        .where(Binding.bot_id == bot.id, Binding.status.in_(IN_SERVICE))
        .values(status=BindingStatus.invalid, reason=reason, cause="token", last_checked_at=now())
        .returning(Binding.id)
    )
    await session.flush()
    if status == BotStatus.invalid and was != BotStatus.invalid:
        await events.bot_invalid(session, bot)
    await events.binding_event(session, Event.binding_invalid, list(lost.scalars()))


async def patch(
    session: AsyncSession, bot_id: int, data: BotPatch, *, gateway: Gateway, cipher: Cipher
) -> BotOut:
    """PATCH /bots/{id}: ``update_bot``, answered as the API shows a bot."""
    bot = await update_bot(session, bot_id, data, gateway=gateway, cipher=cipher)
    await session.refresh(bot)  # updated_at is set by the database
    counts = await binding_counts(session, [bot.id])
    return to_out(bot, cipher, counts[bot.id])


async def token_rejected(session: AsyncSession, bot_id: int, reason: str) -> Bot:
    """Telegram refused the bot's token (revoked, or the session was unregistered): the
    one path that takes a bot and its bindings out of service for it."""
    bot = await get(session, bot_id, lock=True)
    if bot.status != BotStatus.deleted:
        await invalidate(session, bot, status=BotStatus.invalid, reason=f"token rejected: {reason}")
    return bot


async def delete(session: AsyncSession, bot_id: int) -> Bot:
    bot = await get(session, bot_id, lock=True)
    if bot.status != BotStatus.deleted:
        await invalidate(session, bot, status=BotStatus.deleted, reason="bot deleted by operator")
        details = {"tg_id": bot.tg_id, "username": bot.username}
        record(session, "bot.delete", object_type="bot", object_id=bot.id, details=details)
    return bot


async def binding_counts(session: AsyncSession, bot_ids: list[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {i: {s.value: 0 for s in BindingStatus} for i in bot_ids}
    if not bot_ids:
        return counts
    rows = await session.execute(
        select(Binding.bot_id, Binding.status, func.count())
        .where(Binding.bot_id.in_(bot_ids))
        .group_by(Binding.bot_id, Binding.status)
    )
    for bot_id, status, count in rows:
        counts[bot_id][BindingStatus(status).value] = count
    return counts


# What a bot is shown from, in the order ``_shape`` unpacks it: the columns of ``table``'s
# rows and the attributes ``to_out`` reads from an entity.
_COLUMNS = (
    Bot.id,
    Bot.tg_id,
    Bot.alias,
    Bot.description,
    Bot.name,
    Bot.username,
    Bot.first_name,
    Bot.token_tail,
    Bot.status,
    Bot.status_reason,
    Bot.last_checked_at,
    Bot.created_at,
    Bot.updated_at,
)
_STATUSES = tuple(s.value for s in BindingStatus)


def _masked_token(tg_id: int, tail: str | None, encrypted: str | None, cipher: Cipher) -> str:
    # The stored tail and the Telegram id (the token's prefix: register and update check
    # it) make the mask without decrypting; rows from before migration 0003 decrypt.
    if tail is not None:
        return mask_parts(tg_id, tail)
    try:
        return mask_token(cipher.decrypt(encrypted or ""))
    except ValueError:
        return "****"


def _shape(
    values: Sequence[Any], encrypted: str | None, counts: Sequence[int], cipher: Cipher
) -> dict[str, Any]:
    """A bot as the API shows it: ``values`` as in _COLUMNS, ``counts`` its bindings per
    status as in _STATUSES. One definition for the table and for a single bot; plain
    unpacking because a page runs it 100 times per request (botmgr/pages.py)."""
    (id_, tg_id, alias, description, name, username, first_name, tail, status, reason) = values[:10]
    return {
        "id": id_,
        "tg_id": tg_id,
        "alias": alias,
        "description": description,
        "name": name,
        "username": username,
        "bot_link": f"@{username}",
        "first_name": first_name,
        "token": _masked_token(tg_id, tail, encrypted, cipher),
        "status": status.value,
        "status_reason": reason,
        "last_checked_at": values[10],
        "created_at": values[11],
        "updated_at": values[12],
        "bindings": dict(zip(_STATUSES, counts, strict=True)),
    }


def to_out(bot: Bot, cipher: Cipher, counts: dict[str, int]) -> BotOut:
    values = [getattr(bot, column.key) for column in _COLUMNS]
    shaped = _shape(values, bot.token_encrypted, [counts[s] for s in _STATUSES], cipher)
    return BotOut.model_validate(shaped)


async def describe(session: AsyncSession, bot_id: int, *, cipher: Cipher) -> BotOut:
    bot = await get(session, bot_id)
    counts = await binding_counts(session, [bot.id])
    return to_out(bot, cipher, counts[bot.id])


_PAGE = TypeAdapter(list[BotOut])
_ROWS = page_rows(
    select(
        *_COLUMNS,
        # Only a row without a tail needs its token (to mask it): don't ship the rest.
        case((Bot.token_tail.is_(None), Bot.token_encrypted)).label("token_encrypted"),
    ).order_by(Bot.id)
)
# Each bot's binding counts, one per status in _STATUSES' order (zeros included).
_COUNTS = (
    select(*(func.count().filter(Binding.status == s).label(s.value) for s in BindingStatus))
    .where(Binding.bot_id == _ROWS.c.id)
    .lateral("counts")
)
_TABLE = (
    select(*row_columns(_ROWS), *(_COUNTS.c[s] for s in _STATUSES), _ROWS.c[TOTAL])
    .join_from(_ROWS, _COUNTS, true())
    .order_by(_ROWS.c.id)
)


async def table(
    db: AsyncConnection | AsyncSession, *, limit: int, offset: int, cipher: Cipher
) -> tuple[list[BotOut], int]:
    """A page of bots with their binding counts and the number of bots: one statement
    (botmgr/pages.py says why)."""
    rows, total = await fetch_page(db, _TABLE, limit, offset, counted=Bot.__table__)
    n = len(_COLUMNS)
    shaped = [_shape(r, r[n], r[n + 1 : n + 1 + len(_STATUSES)], cipher) for r in rows]
    return _PAGE.validate_python(shaped), total


@dataclass(frozen=True, slots=True)
class TokenChecked:
    bot_id: int
    bot_status: BotStatus
    reason: str | None
    status = Status.ok

    def body(self) -> dict[str, Any]:
        return {"bot_id": self.bot_id, "status": self.bot_status.value, "reason": self.reason}


def request_token_check(unit: UnitOfWork, bot_id: int) -> str:
    """Ask the worker to check the bot's token now; returns the task id."""
    task_id = unit.enqueue(CHECK_BOT, bot_id, bot=bot_id)
    record(
        unit.session, "bot.check", object_type="bot", object_id=bot_id, details={"task_id": task_id}
    )
    return task_id


async def check_token(
    session: AsyncSession, bot_id: int, *, gateway: Gateway, cipher: Cipher
) -> TokenChecked:
    """Check the token now (task CHECK_BOT): one call through the bot's pooled client,
    which logs in again with the token only if Telegram dropped the session (no login per
    check: logins are what Telegram rate-limits hardest). A refused token takes the bot
    and its bindings out of service; FLOOD_WAIT and an unreachable Telegram go up for
    the task's retry policy."""
    bot = await get(session, bot_id)
    if bot.status == BotStatus.deleted:
        raise Conflict(f"bot {bot_id} is deleted")
    try:
        await gateway.admin_channels(bot_account(bot, cipher))
    except TokenInvalid as exc:
        bot = await token_rejected(session, bot_id, exc.reason)
    else:
        bot = await get(session, bot_id, lock=True)
        bot.last_checked_at = now()
        await session.flush()
    return TokenChecked(bot.id, bot.status, bot.status_reason)
