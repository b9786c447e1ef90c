"""Channel bindings as the API and the console see them: start a bind (arbitrated), read,
unbind. The Telegram work of a bind runs in the worker (channels/resolution.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from botmgr.audit.service import record
from botmgr.channels import arbitration, failover, rights
from botmgr.channels.adoption import pending_invites
from botmgr.channels.links import (
    BadReference,
    ParsedRef,
    RefKind,
    parse_channel_id,
    parse_reference,
    to_bot_api_id,
)
from botmgr.channels.schemas import (
    BAD_CHANNEL,
    BindingEventOut,
    ChannelOut,
    ChannelPage,
    ChannelStatsOut,
    StatsOut,
    UnboundOut,
    deep_link,
)
from botmgr.errors import Conflict, Invalid, NotFound, Unavailable
from botmgr.models import LIVE, Binding, BindingStatus, Bot, BotStatus, Channel
from botmgr.pages import TOTAL, fetch_page, page_rows, row_columns
from botmgr.stats import analytics
from botmgr.stats import service as stats
from botmgr.tasks.names import BIND_CHANNEL
from botmgr.uow import UnitOfWork


def _where(ref: ParsedRef) -> ColumnElement[bool]:
    if ref.kind is RefKind.id:
        return Channel.tg_id == ref.tg_id
    if ref.kind is RefKind.username:
        assert ref.username is not None
        return func.lower(Channel.username) == ref.username.lower()
    return Channel.invite_hash == ref.invite_hash


async def _channel_for(session: AsyncSession, ref: ParsedRef, raw: str) -> Channel:
    where = _where(ref)
    channel = (await session.execute(select(Channel).where(where))).scalar_one_or_none()
    if channel is None:
        channel = Channel(
            tg_id=ref.tg_id, username=ref.username, invite_hash=ref.invite_hash, reference=raw
        )
        session.add(channel)
        await session.flush()
    return channel


async def live_binding(session: AsyncSession, channel_id: int) -> Binding | None:
    return (
        await session.execute(
            select(Binding)
            .where(Binding.channel_id == channel_id, Binding.status.in_(LIVE))
            .with_for_update()
        )
    ).scalar_one_or_none()


async def _pick_bot(session: AsyncSession, bot_id: int | None, *, invite: bool = False) -> int:
    """``invite``: the binding is by invite link. A bot gets at most one pending invite
    binding at a time: its channel is found by elimination (adoption.attach_invite), and
    two waiting on one bot could not be told apart."""
    if bot_id is None:
        chosen = await arbitration.choose_bot(session, free_for_invite=invite)
        if chosen is None:
            raise Unavailable("Нет активных ботов для привязки канала")
        return chosen
    bot = await session.get(Bot, bot_id)
    if bot is None or bot.status == BotStatus.deleted:
        raise NotFound(f"bot {bot_id} not found")
    if bot.status != BotStatus.active:
        raise Conflict(f"bot {bot_id} is {bot.status.value}: {bot.status_reason or ''}".strip())
    if invite and (await session.execute(pending_invites(bot.id).limit(1))).first():
        raise Conflict(f"bot {bot_id} already waits to be made admin of an invite-link channel")
    return bot.id


async def start_bind(unit: UnitOfWork, *, reference: str | int, bot_id: int | None) -> str:
    """Record a ``new`` binding for the reference (or reuse the channel's live one) and
    collect the task that will resolve it; returns the task id."""
    session = unit.session
    try:
        ref = parse_reference(reference)
    except BadReference as exc:
        raise Unavailable(BAD_CHANNEL) from exc
    raw = reference if isinstance(reference, str) else str(reference)
    await arbitration.lock(session)
    channel = await _channel_for(session, ref, raw.strip())
    binding = await live_binding(session, channel.id)
    if binding is not None and binding.status == BindingStatus.invalid:
        binding.status, binding.reason = BindingStatus.inactive, "replaced by a new binding"
        await session.flush()
        binding = None
    elif binding is not None and bot_id is not None and binding.bot_id != bot_id:
        raise Conflict(f"channel is already bound to bot {binding.bot_id}")
    if binding is None:
        invite = ref.invite_hash is not None
        binding = Binding(
            bot_id=await _pick_bot(session, bot_id, invite=invite),
            channel_id=channel.id,
            status=BindingStatus.new,
        )
        session.add(binding)
    # Binding the same channel again re-runs the resolution under a new task id.
    binding.task_id = str(uuid.uuid4())
    await session.flush()
    # An invite link admits anyone to a private channel: the log keeps only its start.
    shown = f"+{ref.invite_hash[:4]}…" if ref.invite_hash else raw.strip()
    details = {"reference": shown, "tg_id": channel.tg_id, "binding_id": binding.id}
    details |= {"bot_id": binding.bot_id, "task_id": binding.task_id}
    record(session, "channel.bind", object_type="channel", object_id=channel.id, details=details)
    return unit.enqueue(BIND_CHANNEL, binding.id, task_id=binding.task_id, bot=binding.bot_id)


async def _channel_by_key(session: AsyncSession, raw: str) -> Channel:
    """The channel a path names: its Telegram id (bare or -100…) — or, for channels not
    attached to an id yet, ``@username`` or ``+INVITEHASH``."""
    try:
        if raw.startswith("+"):
            ref = parse_reference(f"https://t.me/{raw}")
        elif raw.startswith("@"):
            ref = parse_reference(raw)
        else:
            ref = ParsedRef(RefKind.id, tg_id=parse_channel_id(raw))
    except BadReference as exc:
        raise NotFound("channel not found") from exc
    channel = (await session.execute(select(Channel).where(_where(ref)))).scalar_one_or_none()
    if channel is None:
        raise NotFound("channel not found")
    return channel


async def request_check(
    unit: UnitOfWork, key: str | None = None, *, binding_id: int | None = None
) -> str:
    """Check the rights of a channel's live binding now (task CHECK_BINDING); returns the
    task id. The channel is named as in paths (``key``, the API) or by one of its
    bindings (``binding_id``, the console's selection). 404: no such channel; 409: it
    has no live binding (unbound, or replaced)."""
    session = unit.session
    if binding_id is not None:
        selected = await session.get(Binding, binding_id)
        if selected is None:
            raise NotFound(f"binding {binding_id} not found")
        channel_id = selected.channel_id
    else:
        channel_id = (await _channel_by_key(session, key or "")).id
    binding = await live_binding(session, channel_id)
    if binding is None:
        raise Conflict("channel has no live binding: bind it first")
    task_id = rights.request_check(unit, binding.id)
    details = {"binding_id": binding.id, "task_id": task_id}
    record(session, "channel.check", object_type="channel", object_id=channel_id, details=details)
    return task_id


async def _current_bindings(
    session: AsyncSession, channel_ids: list[int]
) -> dict[int, tuple[Binding, Bot]]:
    """Per channel: its live binding, else its most recent one."""
    rows = await session.execute(
        select(Binding, Bot)
        .join(Bot, Bot.id == Binding.bot_id)
        .where(Binding.channel_id.in_(channel_ids))
        .order_by(Binding.channel_id, Binding.id)
    )
    current: dict[int, tuple[Binding, Bot]] = {}
    for binding, bot in rows:
        previous = current.get(binding.channel_id)
        if previous is None or previous[0].status not in LIVE or binding.status in LIVE:
            current[binding.channel_id] = (binding, bot)
    return current


def _action(status: BindingStatus, username: str, bot_status: BotStatus) -> dict[str, Any] | None:
    """What the user must do so the bot can post: for ``new`` and ``invalid`` bindings."""
    if status not in (BindingStatus.new, BindingStatus.invalid):
        return None
    if bot_status != BotStatus.active:
        return {
            "message": f"@{username} is {bot_status.value}: bind the channel again (another bot)",
            "deep_link": None,
        }
    return {
        "message": f"make @{username} an admin of the channel with the right to post messages",
        "deep_link": deep_link(username),
    }


# What a channel is shown from, in the order ``_shape`` unpacks it: the columns of
# ``table``'s rows, and the attributes ``_channel_out`` reads from the entities.
_CHANNEL = (Channel.id, Channel.tg_id, Channel.title, Channel.username, Channel.reference)
_BINDING = (
    Binding.id,
    Binding.status,
    Binding.reason,
    Binding.last_checked_at,
    Binding.created_at,
    Binding.updated_at,
)
_BOT = (Bot.id, Bot.username, Bot.status)


def _shape(values: Sequence[Any]) -> dict[str, Any]:
    """A channel as the API shows it, from the values of _CHANNEL + _BINDING + _BOT (the
    binding's and bot's None when it has none). One definition for the table and for a
    single channel; plain unpacking because a page runs it 100 times per request."""
    (id_, tg_id, title, username, reference, binding_id, status, reason, checked) = values[:9]
    created, updated, bot_id, bot_username, bot_status = values[9:14]
    binding = None
    if binding_id is not None:
        binding = {
            "id": binding_id,
            "status": status.value,
            "reason": reason,
            "bot_id": bot_id,
            "bot_link": f"@{bot_username}",
            "deep_link": deep_link(bot_username),
            "last_checked_at": checked,
            "created_at": created,
            "updated_at": updated,
            "action": _action(status, bot_username, bot_status),
        }
    return {
        "id": id_,
        "tg_id": tg_id,
        "bot_api_id": to_bot_api_id(tg_id) if tg_id else None,
        "title": title,
        "username": username,
        "reference": reference,
        "binding": binding,
    }


def _channel_out(channel: Channel, pair: tuple[Binding, Bot] | None) -> ChannelOut:
    values = [getattr(channel, c.key) for c in _CHANNEL]
    if pair is None:
        values += [None] * (len(_BINDING) + len(_BOT))
    else:
        values += [getattr(pair[0], c.key) for c in _BINDING]
        values += [getattr(pair[1], c.key) for c in _BOT]
    return ChannelOut.model_validate(_shape(values))


async def describe(session: AsyncSession, key: str) -> ChannelOut:
    channel = await _channel_by_key(session, key)
    out = _channel_out(channel, (await _current_bindings(session, [channel.id])).get(channel.id))
    if out.binding is not None:
        out.binding.history = [
            BindingEventOut.model_validate(event, from_attributes=True)
            for event in await failover.history(session, out.binding.id)
        ]
    latest = await stats.latest(session, channel.id)
    if latest is not None:
        out.stats = StatsOut.model_validate(latest, from_attributes=True)
    return out


_PAGE = TypeAdapter(list[ChannelOut])
_ROWS = page_rows(select(*_CHANNEL).order_by(Channel.id))
# Per channel: its live binding, else its most recent one (as _current_bindings picks).
_CURRENT = (
    select(*_BINDING, *_BOT)
    .join_from(Binding, Bot, Bot.id == Binding.bot_id)
    .where(Binding.channel_id == _ROWS.c.id)
    .order_by(Binding.status.in_(LIVE).desc(), Binding.id.desc())
    .limit(1)
    .lateral("current")
)
_TABLE = (
    select(*row_columns(_ROWS), *_CURRENT.c, _ROWS.c[TOTAL])
    .outerjoin_from(_ROWS, _CURRENT, true())
    .order_by(_ROWS.c.id)
)


async def table(db: AsyncConnection | AsyncSession, *, limit: int, offset: int) -> ChannelPage:
    """A page of channels with their current binding and its bot, and the number of
    channels: one statement (botmgr/pages.py says why)."""
    rows, total = await fetch_page(db, _TABLE, limit, offset, counted=Channel.__table__)
    channels = _PAGE.validate_python([_shape(r) for r in rows])
    return ChannelPage(channels=channels, total=total, limit=limit, offset=offset)


async def daily_stats(
    session: AsyncSession,
    key: str,
    *,
    start: date | None,
    end: date | None,
    timezone: str = "UTC",
    ages: Sequence[int] = (),
) -> ChannelStatsOut:
    """The channel's daily rows, ``start``/``end`` inclusive, oldest first, with what
    the post samples add (stats/analytics.py)."""
    if start is not None and end is not None and start > end:
        raise Invalid("'from' is after 'to'")
    channel = await _channel_by_key(session, key)  # 404 for an unknown channel
    rows = await analytics.daily_table(
        session, channel.id, start=start, end=end, timezone=timezone, ages=ages
    )
    return ChannelStatsOut(channel_id=channel.tg_id, stats=rows)


async def unbind(session: AsyncSession, key: str) -> UnboundOut:
    """DELETE /channels/{key}: the channel's live binding becomes ``inactive``."""
    return await _unbind(session, await _channel_by_key(session, key))


async def unbind_row(session: AsyncSession, channel_id: int) -> UnboundOut:
    """The same, for the channel row ``channel_id`` (the console's selection)."""
    channel = await session.get(Channel, channel_id)
    if channel is None:
        raise NotFound("channel not found")
    return await _unbind(session, channel)


async def _unbind(session: AsyncSession, channel: Channel) -> UnboundOut:
    binding = await live_binding(session, channel.id)
    if binding is not None:
        binding.status, binding.reason = BindingStatus.inactive, "unbound by operator"
        details = {"tg_id": channel.tg_id, "binding_id": binding.id, "bot_id": binding.bot_id}
        record(
            session, "channel.unbind", object_type="channel", object_id=channel.id, details=details
        )
        await session.flush()
        await session.refresh(binding)  # updated_at is set by the database
    out = _channel_out(channel, (await _current_bindings(session, [channel.id])).get(channel.id))
    return UnboundOut(message="Канал отвязан", **out.model_dump())
