"""``botmgr rotate-key``: every bot's token and Telethon session re-encrypted under the
current key, while the service keeps running (docs/DEPLOY.md, "Rotating the secret key").

The encrypted columns are ``bots.token_encrypted`` and ``bots.session_encrypted`` (the
only ones: models.py). Their writers are bot registration and PATCH (API and console)
and the gateway's session store, which rewrites a session whenever Telethon renews it —
in a worker, at any moment. So:

- Bots go in batches in id order, each batch its own short transaction that locks its
  rows with ``FOR UPDATE SKIP LOCKED``: a row a writer holds is not waited for but
  retried after the pass; a writer that comes while the batch holds the row waits for
  the batch's commit (milliseconds) and then writes its value, encrypted under the
  current key as every process encrypts by then. No value is lost and no process stops.
- A value already under the current key is left alone: a second run writes nothing, and
  an interrupted run is resumed by running it again (it skips what is done).
- It refuses to start while any running process announces another current key
  (key_writers.py): that process would write rows the new key cannot open later.
- A last read-only pass counts what is not under the current key alone: what it finds
  (a process that wrote under another key meanwhile) is reported, never hidden.
"""

from __future__ import annotations

import asyncio
import getpass
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from botmgr.audit.context import Actor, bind
from botmgr.audit.service import record
from botmgr.db import make_engine
from botmgr.key_writers import live_writers
from botmgr.models import ActorKind, Bot
from botmgr.security import Cipher
from botmgr.settings import Settings

BATCH = 200
# How long rows a writer held are tried again (writers hold a bot row for milliseconds);
# any still held then are reported (run the command again), never waited for.
HELD_PATIENCE = 30.0


@dataclass(slots=True)
class RotationReport:
    bots: int = 0  # bots at the start
    scanned: int = 0  # bot rows rotated or found current
    rotated: int = 0  # secrets (tokens and sessions) re-encrypted
    current: int = 0  # secrets already under the current key
    retried: int = 0  # rows a writer held when their batch came, done later
    held: list[int] = field(default_factory=list)  # bot ids held past the patience
    unreadable: list[int] = field(default_factory=list)  # bot ids no key opens
    not_current: int = 0  # the final pass: secrets not under the current key alone


Progress = Callable[[RotationReport], None]


def _rotate_row(cipher: Cipher, row: Any, report: RotationReport) -> dict[str, Any] | None:
    """The row's encrypted columns as they must be stored (what is current as it is),
    or None if nothing changes."""
    values = {"b_id": row.id, "token": row.token_encrypted, "session": row.session_encrypted}
    changed = 0
    try:
        for name in ("token", "session"):
            if values[name] is None:
                continue
            rotated = cipher.rotated(values[name])
            if rotated is None:
                report.current += 1
            else:
                values[name], changed = rotated, changed + 1
    except ValueError:
        report.unreadable.append(row.id)
        return None
    report.rotated += changed
    return values if changed else None


# updated_at kept: the bot did not change, only how its secrets are stored.
_STORE = (
    update(Bot)
    .where(Bot.id == bindparam("b_id"))
    .values(
        token_encrypted=bindparam("token"),
        session_encrypted=bindparam("session"),
        updated_at=Bot.updated_at,
    )
)


async def _rotate_ids(
    conn: AsyncConnection, cipher: Cipher, ids: Sequence[int], report: RotationReport
) -> set[int]:
    """Rotate the rows ``ids`` this transaction can lock; returns the ids it could not
    (a writer held them)."""
    columns = (Bot.id, Bot.token_encrypted, Bot.session_encrypted)
    query = select(*columns).where(Bot.id.in_(ids)).order_by(Bot.id)
    rows = (await conn.execute(query.with_for_update(skip_locked=True))).all()
    changes = [v for v in (_rotate_row(cipher, row, report) for row in rows) if v is not None]
    if changes:
        await conn.execute(_STORE, changes)  # one executemany for the batch
    report.scanned += len(rows)
    missing = set(ids) - {row.id for row in rows}
    if not missing:
        return missing
    # Held by a writer, or deleted since the ids were read: only the first come back.
    still = await conn.execute(select(Bot.id).where(Bot.id.in_(missing)))
    return set(still.scalars().all())


async def rotate_secrets(
    engine: AsyncEngine,
    cipher: Cipher,
    *,
    batch: int = BATCH,
    progress: Progress | None = None,
    retry_pause: float = 0.25,
    patience: float = HELD_PATIENCE,
) -> RotationReport:
    report = RotationReport()
    async with engine.connect() as conn:
        report.bots = (await conn.execute(select(func.count()).select_from(Bot))).scalar_one()
    after, held = 0, set[int]()
    while True:
        async with engine.begin() as conn:
            ids = (
                (
                    await conn.execute(
                        select(Bot.id).where(Bot.id > after).order_by(Bot.id).limit(batch)
                    )
                )
                .scalars()
                .all()
            )
            if not ids:
                break
            held |= await _rotate_ids(conn, cipher, ids, report)
        after = ids[-1]
        if progress:
            progress(report)
    report.retried = len(held)
    deadline = time.monotonic() + patience
    while held and time.monotonic() < deadline:
        await asyncio.sleep(retry_pause)
        pending = sorted(held)
        for start in range(0, len(pending), batch):
            chunk = pending[start : start + batch]
            async with engine.begin() as conn:
                left = await _rotate_ids(conn, cipher, chunk, report)
            held = (held - set(chunk)) | left
    report.held = sorted(held)
    if progress and report.retried:
        progress(report)
    report.not_current = await count_not_current(engine, cipher, batch=batch * 5)
    return report


async def count_not_current(engine: AsyncEngine, cipher: Cipher, *, batch: int) -> int:
    """Secrets the current key alone does not open (read only, no locks)."""
    found, after = 0, 0
    columns = (Bot.id, Bot.token_encrypted, Bot.session_encrypted)
    while True:
        async with engine.connect() as conn:
            query = select(*columns).where(Bot.id > after).order_by(Bot.id).limit(batch)
            rows = (await conn.execute(query)).all()
        if not rows:
            return found
        for row in rows:
            for stored in (row.token_encrypted, row.session_encrypted):
                if stored is not None and not cipher.is_current(stored):
                    found += 1
        after = rows[-1].id


class RotationRefused(Exception):
    """A running process encrypts under another key (or Redis cannot say)."""


async def check_writers(settings: Settings, cipher: Cipher) -> int:
    """How many running processes announce the current key; RotationRefused if any
    announces another one or Redis cannot be asked."""
    redis = Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
    )
    try:
        writers = await live_writers(redis, settings.redis_prefix)
    except (RedisError, OSError) as exc:
        raise RotationRefused(
            f"cannot ask Redis which key the running processes use ({type(exc).__name__})"
        ) from None
    finally:
        await redis.aclose()
    others = sorted(process for process, key in writers.items() if key != cipher.key_id)
    if others:
        raise RotationRefused(
            f"{len(others)} running process(es) encrypt under another key than "
            f"BOTMGR_SECRET_KEY (key id {cipher.key_id}): {', '.join(others[:10])}; deploy "
            "the new BOTMGR_SECRET_KEY (and the old one in BOTMGR_SECRET_KEYS_OLD) to every "
            "process first"
        )
    return len(writers)


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container's uid without a passwd entry
        return "unknown"


async def _audit(engine: AsyncEngine, cipher: Cipher, report: RotationReport) -> None:
    """The run in the audit log: the command's batches are transactions of their own, so
    its event is one more, written once they are done (by whom: the host's user)."""
    async with AsyncSession(engine) as session:
        bind(session, Actor(ActorKind.system, f"rotate-key ({_who()})", socket.gethostname()))
        details = {
            "key_id": cipher.key_id,
            "bots": report.scanned,
            "rotated": report.rotated,
            "already_current": report.current,
            "held": report.held[:20],
            "unreadable": report.unreadable[:20],
            "not_current": report.not_current,
        }
        record(session, "key.rotate", object_type="key", object_id=cipher.key_id, details=details)
        await session.commit()


async def rotate_key(
    settings: Settings, *, batch: int, force: bool, say: Callable[[str], None]
) -> bool:
    """The whole command: check, rotate, report. True when every secret is now under
    the current key alone."""
    cipher = Cipher.from_settings(settings)
    try:
        live = await check_writers(settings, cipher)
        say(f"rotate-key: current key id {cipher.key_id}; {live} running process(es) use it")
    except RotationRefused as exc:
        if not force:
            raise
        say(f"rotate-key: --force: {exc}")
    engine = make_engine(
        settings.database_url,
        pool_size=1,
        max_overflow=0,
        statement_timeout=settings.db_statement_timeout_seconds,
        lock_timeout=settings.db_lock_timeout_seconds,
    )

    def progress(report: RotationReport) -> None:
        say(
            f"rotate-key: {report.scanned}/{report.bots} bots, {report.rotated} secrets "
            f"re-encrypted, {report.current} already current, {len(report.unreadable)} "
            "unreadable"
        )

    try:
        report = await rotate_secrets(engine, cipher, batch=batch, progress=progress)
        await _audit(engine, cipher, report)
    finally:
        await engine.dispose()
    say(
        f"rotate-key: done: {report.scanned} bots, {report.rotated} secrets re-encrypted, "
        f"{report.current} already current, {report.retried} retried after a writer held "
        f"them, {len(report.held)} still held"
        + (f" (bot ids {report.held[:20]})" if report.held else "")
        + f", {len(report.unreadable)} unreadable"
        + (f" (bot ids {report.unreadable[:20]})" if report.unreadable else "")
        + f"; {report.not_current} secrets not under the current key alone"
    )
    return not report.unreadable and not report.held and report.not_current == 0
