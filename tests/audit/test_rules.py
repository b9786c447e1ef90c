"""The audit log's own rules: details never keep a secret (whatever a caller passes), a
change made without an actor (the worker, a command) is the service's own, and
``botmgr rotate-key`` leaves one event for its run."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from botmgr.audit.context import SYSTEM
from botmgr.audit.service import REDACTED, TEXT_MAX, record, scrub
from botmgr.bots.rotation import rotate_key
from botmgr.models import ActorKind, AuditEvent
from tests.harness.db import insert_bot
from tests.harness.env import settings_from

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def test_scrub_removes_secrets_at_any_depth() -> None:
    details = {
        "token": TOKEN,
        "webhook": {"url": "https://example.com/hook", "secret": "s3cret", "events": ["a"]},
        "password_hint": "x",
        "headers": [{"Authorization": "Basic b3BlcmF0b3I6cHc="}],
        "note": f"the token {TOKEN} pasted in a text",
        "ciphertext": "gAAAAABl" + "x" * 60,
        "when": datetime(2026, 1, 2, tzinfo=UTC),
        "long": "y" * (TEXT_MAX + 50),
        "count": 3,
        "flag": None,
    }
    clean = scrub(details)
    assert clean["token"] == clean["password_hint"] == REDACTED
    assert clean["webhook"] == {
        "url": "https://example.com/hook",
        "secret": REDACTED,
        "events": ["a"],
    }
    assert clean["headers"] == [{"Authorization": REDACTED}]
    assert clean["note"] == f"the token {REDACTED} pasted in a text"
    assert clean["ciphertext"] == REDACTED
    assert clean["when"] == "2026-01-02T00:00:00+00:00"
    assert len(clean["long"]) == TEXT_MAX + 1 and clean["long"].endswith("…")
    assert (clean["count"], clean["flag"]) == (3, None)
    text = repr(clean)
    assert TOKEN.partition(":")[2] not in text and "s3cret" not in text and "b3Bl" not in text


async def test_a_change_without_an_actor_is_the_services_own(
    db_engine: AsyncEngine, clean_db: None
) -> None:
    async with AsyncSession(db_engine) as session:
        record(session, "bot.check", object_type="bot", object_id=7)
        await session.commit()
    async with AsyncSession(db_engine) as session:
        [event] = (await session.execute(select(AuditEvent))).scalars()
    assert (event.actor_kind, event.actor, event.address) == (ActorKind.system, SYSTEM.name, None)
    assert (event.object_id, event.details, event.request_id) == ("7", {}, None)
    assert event.at is not None


async def test_rotate_key_leaves_one_event(
    service_env: dict[str, str], db: AsyncSession, db_engine: AsyncEngine, clean_db: None
) -> None:
    settings = settings_from(service_env)
    await insert_bot(db, settings)
    said: list[str] = []
    assert await rotate_key(settings, batch=10, force=True, say=said.append)
    async with AsyncSession(db_engine) as session:
        [event] = (await session.execute(select(AuditEvent))).scalars()
    assert (event.actor_kind, event.action, event.object_type) == (
        ActorKind.system,
        "key.rotate",
        "key",
    )
    assert event.actor.startswith("rotate-key (") and event.address
    assert event.details["bots"] == 1 and event.details["already_current"] >= 1
    assert event.object_id == event.details["key_id"] and event.object_id in said[0]
