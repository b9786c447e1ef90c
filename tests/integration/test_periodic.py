"""The hourly rights sweeps, end to end: a real worker process, real Telethon, tgemu."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from celery import Celery
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.models import Binding, Bot
from botmgr.tasks.names import CHECK_ACTIVE, CHECK_BOT, CHECK_NEW
from tests.harness.flows import WAIT, bind_channel, post, register_bot, run_task

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("worker", "clean_db")]


async def register(api: httpx.AsyncClient, bot: dict) -> int:
    """Registers ``bot`` and remembers its id in it ("db_id"), for ``bind``."""
    bot["db_id"] = await register_bot(api, bot)
    return bot["db_id"]


async def bind(
    api: httpx.AsyncClient, tgemu: Any, bot: dict, *, admin: bool, **rights: bool
) -> tuple[dict, dict]:
    """A public channel bound to ``bot`` (registered: has "db_id"); made admin first when
    ``admin``."""
    channel = tgemu.create_channel("Sweep", username=tgemu.unique("sw"))
    if admin:
        tgemu.grant_admin(channel["id"], bot["id"], **rights)
    return channel, await bind_channel(api, channel, bot_id=bot["db_id"])


async def binding(db: AsyncSession, binding_id: int) -> Binding:
    stmt = select(Binding).where(Binding.id == binding_id)
    return (await db.execute(stmt.execution_options(populate_existing=True))).scalar_one()


async def test_bind_checks_rights_at_once(tg_api: httpx.AsyncClient, tgemu: Any) -> None:
    bot = tgemu.create_bot()
    await register(tg_api, bot)
    _, ready = await bind(tg_api, tgemu, bot, admin=True)
    assert ready["status"] == "active"
    assert ready["message"].startswith("Канал добавлен")
    _, waiting = await bind(tg_api, tgemu, bot, admin=False)
    assert waiting["status"] == "new"
    _, no_post = await bind(tg_api, tgemu, bot, admin=True, post_messages=False, edit_messages=True)
    assert no_post["status"] == "new"


async def test_active_sweep_marks_lost_rights(
    tg_api: httpx.AsyncClient, tgemu: Any, celery: Celery, db: AsyncSession
) -> None:
    bot = tgemu.create_bot()
    await register(tg_api, bot)
    bound = [await bind(tg_api, tgemu, bot, admin=True) for _ in range(3)]
    assert all(b["status"] == "active" for _, b in bound)
    (revoked, r), (demoted, d), (_, k) = bound
    tgemu.revoke_admin(revoked["id"], bot["id"])
    tgemu.grant_admin(demoted["id"], bot["id"], post_messages=False, edit_messages=True)
    before = datetime.now(UTC)

    report = (await run_task(celery, CHECK_ACTIVE))["body"]
    assert report["checked"] == 3 and report["invalidated"] == 2, report

    lost = await binding(db, r["binding_id"])
    assert lost.status.value == "invalid" and lost.cause == "rights"
    assert (lost.reason or "").startswith("rights lost: the bot is not an admin; grant them:")
    no_post = await binding(db, d["binding_id"])
    assert no_post.status.value == "invalid"
    assert (no_post.reason or "").startswith("rights lost: the bot has no right to post messages")
    fine = await binding(db, k["binding_id"])
    assert fine.status.value == "active" and fine.reason is None
    for row in (lost, no_post, fine):
        assert row.last_checked_at is not None and row.last_checked_at >= before
    response = await tg_api.post("/messages", json={"channel_id": revoked["id"], "message": "x"})
    assert response.status_code == 409


async def test_new_sweep_activates_granted_and_expires_old(
    tg_api: httpx.AsyncClient, tgemu: Any, celery: Celery, db: AsyncSession
) -> None:
    bot = tgemu.create_bot()
    await register(tg_api, bot)
    (granted, g), (_, w), (_, old) = [await bind(tg_api, tgemu, bot, admin=False) for _ in range(3)]
    await db.execute(
        update(Binding)
        .where(Binding.id == old["binding_id"])
        .values(created_at=datetime.now(UTC) - timedelta(days=7, minutes=1))
    )
    await db.commit()

    report = (await run_task(celery, CHECK_NEW))["body"]
    assert (report["checked"], report["activated"], report["expired"]) == (2, 0, 1), report
    waiting = await binding(db, w["binding_id"])
    assert waiting.status.value == "new" and waiting.last_checked_at is not None
    assert waiting.reason.startswith("waiting for the bot to be made an admin")
    expired = await binding(db, old["binding_id"])
    assert (expired.status.value, expired.reason) == ("invalid", "admin rights never granted")

    tgemu.grant_admin(granted["id"], bot["id"])
    checked_before = waiting.last_checked_at
    report = (await run_task(celery, CHECK_NEW))["body"]
    assert (report["checked"], report["activated"]) == (2, 1), report
    assert (await binding(db, g["binding_id"])).status.value == "active"
    still = await binding(db, w["binding_id"])
    assert still.status.value == "new" and still.last_checked_at > checked_before
    await post(tg_api, granted["id"], "hi", wait=True)


async def test_revoked_token_invalidates_bot_and_bindings(
    tg_api: httpx.AsyncClient, tgemu: Any, celery: Celery, db: AsyncSession
) -> None:
    bot, other = tgemu.create_bot(), tgemu.create_bot()
    bot_id, other_id = await register(tg_api, bot), await register(tg_api, other)
    mine = [await bind(tg_api, tgemu, bot, admin=True) for _ in range(2)]
    theirs = await bind(tg_api, tgemu, other, admin=True)
    tgemu.revoke_token(bot["id"])

    report = (await run_task(celery, CHECK_ACTIVE))["body"]
    assert report["bots_invalidated"] == 1, report
    db.expire_all()
    row = await db.get_one(Bot, bot_id)
    assert row.status.value == "invalid" and row.status_reason.startswith("token rejected")
    for _, b in mine:
        lost = await binding(db, b["binding_id"])
        assert lost.status.value == "invalid" and lost.reason.startswith("token rejected")
    assert (await binding(db, theirs[1]["binding_id"])).status.value == "active"

    checked = await run_task(celery, CHECK_BOT, other_id)
    assert checked["status_code"] == 200 and checked["body"]["status"] == "active"
    assert (await run_task(celery, CHECK_BOT, 10**9))["status_code"] == 404


async def test_flood_wait_postpones_only_that_bot(
    tg_api: httpx.AsyncClient, tgemu: Any, celery: Celery, db: AsyncSession
) -> None:
    slow, fast = tgemu.create_bot(), tgemu.create_bot()
    await register(tg_api, slow)
    await register(tg_api, fast)
    slow_bound = [await bind(tg_api, tgemu, slow, admin=True) for _ in range(3)]
    fast_bound = [await bind(tg_api, tgemu, fast, admin=True) for _ in range(3)]
    tgemu.revoke_admin(slow_bound[0][0]["id"], slow["id"])
    tgemu.add_fault("channels.getParticipant", "FLOOD_WAIT_5", bot_id=slow["id"], times=1)
    before = datetime.now(UTC)

    started = time.monotonic()
    report = (await run_task(celery, CHECK_ACTIVE))["body"]
    assert time.monotonic() - started < 4  # the sweep did not wait for the flood
    assert report["postponed"] >= 1, report
    for _, b in fast_bound:
        assert (await binding(db, b["binding_id"])).last_checked_at >= before

    for _ in range(300):  # the postponed share runs after its countdown
        rows = [await binding(db, b["binding_id"]) for _, b in slow_bound]
        checked = all(r.last_checked_at and r.last_checked_at >= before for r in rows)
        # The sweep writes the lost binding first; the failover attempt that finds no
        # other bot adds the deep link in its own transaction, a moment later.
        if checked and "grant them" in (rows[0].reason or ""):
            break
        await asyncio.sleep(0.1)
    assert rows[0].status.value == "invalid"
    assert (rows[0].reason or "").startswith("rights lost: the bot is not an admin; grant them:")
    assert [r.status.value for r in rows[1:]] == ["active", "active"]
    assert time.monotonic() - started >= 5


async def test_new_sweep_attaches_invite_link_binding(
    tg_api: httpx.AsyncClient, tgemu: Any, celery: Celery, db: AsyncSession
) -> None:
    bot = tgemu.create_bot()
    await register(tg_api, bot)
    private = tgemu.create_channel("Private")  # no username: only an invite link
    response = await tg_api.post(
        "/channels/", headers=WAIT, json={"channel": private["invite_link"], "bot_id": bot["db_id"]}
    )
    assert response.status_code == 200 and response.json()["status"] == "new", response.text
    binding_id = response.json()["binding_id"]
    tgemu.grant_admin(private["id"], bot["id"])

    report = (await run_task(celery, CHECK_NEW))["body"]
    assert report["checked"] == 1, report
    row = await binding(db, binding_id)
    assert row.status.value == "active", row.reason
    channel = (await tg_api.get(f"/channels/{private['id']}")).json()
    assert channel["binding"]["id"] == binding_id and channel["title"] == "Private"
