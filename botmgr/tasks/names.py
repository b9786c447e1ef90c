"""Every Celery task's name and retry policy, in one leaf module.

The API, the console, the schedules and the worker name tasks from here, so none of them
imports the worker to send one (it imports only the gateway's error types and Settings,
which import nothing of the service). A task's arguments are written next to its name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from botmgr.settings import Settings
from botmgr.telegram.gateway import FloodWait, PacedWait, TelegramError, TelegramUnavailable

QUEUE = "botmgr"

BIND_CHANNEL = "botmgr.channels.bind"  # [binding_id]: resolve the channel, check rights
CHECK_BINDING = "botmgr.channels.check"  # [binding_id]: may the bot still post?
SEND_POST = "botmgr.posts.send"  # [post_id]
CHECK_BOT = "botmgr.bots.check"  # [bot_id]: does Telegram still take the token?
CHECK_ACTIVE = "botmgr.checks.active"  # sweep: are active bindings still allowed to post?
CHECK_NEW = "botmgr.checks.new"  # sweep: have new bindings been granted the rights?
CHECK_BINDINGS = "botmgr.checks.bindings"  # [binding_ids]: a postponed share of a sweep
COLLECT_STATS = "botmgr.stats.collect_all"  # kwargs day=, channel_ids= (a part; default all)
COLLECT_CHANNEL_STATS = "botmgr.stats.collect_channel"  # [channel_id], kwargs day=
RECONCILE = "botmgr.posts.reconcile"  # publish due waits; re-publish posts with no task
SAMPLE_POSTS = "botmgr.stats.sample_posts"  # [channel_id]: read its posts' due samples
# Follow-ups on a sent post (posts/actions.py), each [post_id] plus what to do:
EDIT_POST = "botmgr.posts.edit"  # kwargs markdown= (None: keep), buttons= (None: keep)
DELETE_POST = "botmgr.posts.delete"  # kwargs auto= (True: its delete_after came due)
PIN_POST = "botmgr.posts.pin"  # kwargs unpin=, silent=
# [delivery_id]: one attempt at a webhook delivery (botmgr/webhooks/delivery.py)
DELIVER_WEBHOOK = "botmgr.webhooks.deliver"
#: The tasks about one post: they retry as a send does (BOTMGR_POST_MAX_RETRIES).
POST_TASKS = (SEND_POST, EDIT_POST, DELETE_POST, PIN_POST)

#: What Telegram may answer that is worth asking again later: a flood wait (after the
#: wait it names) or an unreachable Telegram (after the policy's delay).
RETRYABLE: tuple[type[TelegramError], ...] = (FloodWait, TelegramUnavailable)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and after how long a task asks Telegram again. A task is retried by
    Celery (never sleeps a wait); after ``max_retries`` it gives up with a 503 answer."""

    max_retries: int
    unreachable_delay: float = 5.0

    def delay(self, error: TelegramError) -> int:
        """Whole seconds before the next attempt (never earlier than Telegram asked)."""
        if isinstance(error, FloodWait):
            return max(1, error.seconds)
        return self.later()

    def countdown(self, error: TelegramError) -> float:
        """Seconds before a task's next attempt: ``delay``, but a slot of the service's
        own pacer exactly (it is reserved for the task, and kept if it comes early)."""
        if isinstance(error, PacedWait):
            return max(0.0, error.exact)
        return self.delay(error)

    def later(self) -> int:
        """Whole seconds before asking again what could not be reached (Telegram, or a
        database that did not answer in time)."""
        return max(1, math.ceil(self.unreachable_delay))


_MAX_RETRIES = {BIND_CHANNEL: 5, CHECK_BINDING: 3, CHECK_BOT: 3, SAMPLE_POSTS: 5}


def retry_policy(name: str, settings: Settings) -> RetryPolicy:
    """The policy of task ``name``; posts take ``BOTMGR_POST_MAX_RETRIES``, everything
    waits ``BOTMGR_RETRY_UNREACHABLE_SECONDS`` after an unreachable Telegram."""
    retries = settings.post_max_retries if name in POST_TASKS else _MAX_RETRIES.get(name, 0)
    return RetryPolicy(max_retries=retries, unreachable_delay=settings.retry_unreachable_seconds)
