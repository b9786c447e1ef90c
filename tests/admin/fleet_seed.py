"""Rows the console's screenshots show beside what the worker made: a channel's post
samples over the weeks its daily rows cover (views by age, ERR), and a fleet's troubles
(a failed post, a post waiting out a flood wait, a task waiting to retry)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from botmgr.models import Binding, DeferredJob, Post, PostSample, PostStatus
from botmgr.tasks.names import CHECK_BOT

AGES = {1: 0.35, 24: 1.0, 48: 1.12}  # views at each age, as a share of those at 24 h


async def seed_samples(db: AsyncSession, channel_id: int, days: int = 28) -> None:
    """Two posts a day for ``days`` days up to yesterday, read at 1 h, 24 h and 48 h."""
    today = datetime.now(UTC).date()
    rows = []
    for i in range(days):
        day = today - timedelta(days=days - i)
        for n in range(2):
            published = datetime.combine(day, time(9 + 8 * n), UTC)
            at_24h = 380 + 9 * i + [0, 90, -60, 140, 30, -80, 60][i % 7] + 50 * n
            for hours, share in AGES.items():
                due = published + timedelta(hours=hours)
                rows.append(
                    {
                        "channel_id": channel_id,
                        "message_id": 1000 + 2 * i + n,
                        "published_at": published,
                        "age_hours": hours,
                        "due_at": due,
                        "taken_at": due + timedelta(seconds=40),
                        "views": int(at_24h * share),
                        "forwards": int(at_24h * share / 40),
                        "reactions": int(at_24h * share / 12),
                    }
                )
    await db.execute(insert(PostSample).values(rows).on_conflict_do_nothing())
    await db.commit()


async def seed_troubles(db: AsyncSession, binding_id: int, bot_id: int) -> None:
    binding = await db.get_one(Binding, binding_id)
    now = datetime.now(UTC)

    def post(status: PostStatus, **fields: object) -> Post:
        return Post(
            channel_id=binding.channel_id,
            binding_id=binding.id,
            markdown="Evening digest",
            random_id=uuid.uuid4().int >> 65,
            status=status,
            task_id=str(uuid.uuid4()),
            **fields,
        )

    db.add_all(
        [
            post(PostStatus.failed, error="Telegram refused the message: MESSAGE_TOO_LONG"),
            post(
                PostStatus.queued,
                attempts=1,
                not_before=now + timedelta(minutes=12),
                dispatched_at=None,
            ),
            DeferredJob(
                name=CHECK_BOT,
                args=[bot_id],
                kwargs={},
                task_id=str(uuid.uuid4()),
                retries=1,
                due_at=now + timedelta(minutes=25),
            ),
        ]
    )
    await db.commit()
