from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

BAD_CHANNEL = "Задан некорректный идентификатор канала"
BOUND = (
    "Канал добавлен, для дальнейшей работы необходимо дать боту права администратора "
    "в текущем канале"
)


class BindIn(BaseModel):
    # A link, @username or numeric id (bare or -100…); parsed by channels.links.
    channel: str | int
    bot_id: int | None = Field(default=None, ge=1, le=2**63 - 1)


class ActionOut(BaseModel):
    """What the user must do before the bot can post."""

    message: str
    deep_link: str | None  # opens Telegram to make the bot an admin with the rights


class BindingEventOut(BaseModel):
    """One step of a binding's history: a move between bots (failover), a loss of
    rights (``to_bot_id`` null) or their return (``from_bot_id`` null)."""

    from_bot_id: int | None
    to_bot_id: int | None
    why: str
    at: datetime


class BindingOut(BaseModel):
    id: int
    status: str
    reason: str | None
    bot_id: int
    bot_link: str
    deep_link: str
    last_checked_at: datetime | None
    created_at: datetime
    updated_at: datetime
    # for a ``new`` or ``invalid`` binding: what to do so the bot can post; else None
    action: ActionOut | None = None
    # Filled by GET /channels/{tg_id}; empty in the channel table.
    history: list[BindingEventOut] = Field(default_factory=list)


class StatsOut(BaseModel):
    day: date
    posts: int
    views: int
    subscribers: int | None
    collected_at: datetime
    # False: the channel's update stream had a gap the collector could not read back,
    # so posts/views may be short of the truth (never a silent undercount); also False
    # for a day seen only from ``since`` on
    complete: bool = True
    # Set when the binding became active within the day: the counts are those of the
    # posts from this moment on (None: the whole day was seen)
    since: datetime | None = None


class ChannelOut(BaseModel):
    id: int
    tg_id: int | None  # bare MTProto id
    bot_api_id: int | None  # the same id as the Bot API writes it (-100…)
    title: str | None
    username: str | None
    reference: str
    binding: BindingOut | None
    stats: StatsOut | None = None


class ChannelPage(BaseModel):
    channels: list[ChannelOut]
    total: int
    limit: int
    offset: int


class AgeTotals(BaseModel):
    """The day's posts read at one age (stats/samples.py): how many, counters summed."""

    hours: int
    posts: int
    views: int
    forwards: int
    reactions: int


class DailyStatsOut(StatsOut):
    """A row of GET /channels/{tg_id}/stats: the collected day, and the analytics."""

    # subscribers minus the previous day's (None: no row for the previous day)
    subscribers_change: int | None = None
    # one entry per configured age (BOTMGR_STATS_POST_AGES), posts by publication day
    by_age: list[AgeTotals] = Field(default_factory=list)
    # engagement rate, percent: mean views at 24 h of the day's posts / subscribers
    # (None: no post of the day read at 24 h yet, or no subscriber count)
    err: float | None = None


class ChannelStatsOut(BaseModel):
    channel_id: int | None
    stats: list[DailyStatsOut]


class UnboundOut(ChannelOut):
    message: str


class ChannelBoundOut(BaseModel):
    """The bind task's answer (``Prefer: wait`` or ``GET /tasks/{id}``)."""

    channel_id: int | None
    bot_link: str
    deep_link: str
    message: str
    binding_id: int
    status: str


class BindingCheckedOut(BaseModel):
    """The rights check's answer (``Prefer: wait`` or ``GET /tasks/{id}``)."""

    binding_id: int
    status: str
    reason: str | None


def deep_link(username: str) -> str:
    return f"https://t.me/{username}?startchannel&admin=post_messages"
