"""The Telegram calls a day of periodic work takes for a fleet, against the pacing budget
(telegram/clients.Pacer: BOT = one call per interval per bot, after a burst). Printed by
bench/sweep.py (``--budget-only`` prints only this, starting nothing).

Per channel and day: the hourly rights sweep of active bindings (getParticipant), the
daily collection (getChannelDifference, getMessages per 100 of the day's posts,
getFullChannel), and the post samples (stats/samples.py): each post is read at every
age (BOTMGR_STATS_POST_AGES) with getMessages, ≤ 100 ids a call. The posts of a channel
whose ages come due in the same reconciler run share a call: the worst case is one call
per post and age (posts spread over the day), the best one call per 100 posts and age.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from botmgr.telegram import clients as pacing
from botmgr.telegram.gateway import MESSAGES_PER_CALL


@dataclass(frozen=True, slots=True)
class Line:
    what: str
    calls: int  # per day, the whole fleet


def daily_calls(channels: int, posts_per_day: int, ages: Sequence[int]) -> list[Line]:
    batches = math.ceil(posts_per_day / MESSAGES_PER_CALL)
    return [
        Line("rights sweep, hourly (getParticipant)", channels * 24),
        Line("daily collection (feed, views, subscribers)", channels * (2 + batches)),
        Line("post samples, worst (a call per post and age)", channels * posts_per_day * len(ages)),
        Line("post samples, best (a channel's posts batched)", channels * batches * len(ages)),
    ]


def print_budget(channels: int, bots: int, posts_per_day: int, ages: Sequence[int]) -> None:
    interval, _burst = pacing.BOT
    per_bot_budget = 86_400 / interval  # calls a bot may make in a day, paced
    lines = daily_calls(channels, posts_per_day, ages)
    worst = sum(line.calls for line in lines if "best" not in line.what)
    print(
        f"# analytics budget: {channels:,} channels on {bots:,} bots, {posts_per_day} posts "
        f"a channel a day, samples at {', '.join(f'{h} h' for h in ages)}; pacing "
        f"{1 / interval:g} calls/s per bot"
    )
    print(f"{'calls a day':48} {'calls':>12} {'per bot/s':>10} {'of budget':>10}")
    for line in [*lines, Line("total (sweep + collection + samples, worst)", worst)]:
        per_bot = line.calls / bots / 86_400
        share = line.calls / bots / per_bot_budget
        print(f"{line.what:48} {line.calls:12,} {per_bot:10.3f} {share:10.2%}")
    per_bot_channels = math.ceil(channels / bots)
    print(
        f"peak: every channel of a bot with a sample due in one reconciler run (a minute): "
        f"{per_bot_channels} calls, {per_bot_channels * interval:.1f} s of the bot's paced time"
    )
