"""Answers of GET /messages/{post_id}/stats: a post's samples (a day's row of the
channel table is channels/schemas.py's DailyStatsOut)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class SampleOut(BaseModel):
    age_hours: int
    due_at: datetime
    taken_at: datetime | None  # None: still pending
    views: int | None
    forwards: int | None
    reactions: int | None
    error: str | None  # why a taken sample has no counters


class PostStatsOut(BaseModel):
    post_id: int
    channel_id: int | None  # the channel's Telegram id (bare)
    message_id: int | None
    published_at: datetime | None  # when it was sent; None: not sent
    samples: list[SampleOut]
