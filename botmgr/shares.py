"""One bot's share of a fleet-wide job (the rights sweep, the stats collection).

Every bot's share runs at once; inside a share a few calls are in flight at a time (the
gateway paces each bot's calls against its one budget). What Telegram answers decides
what happens to the rest of the share:
- FLOOD_WAIT stops the share: this item and every one not reached yet are postponed by
  the wait (asking again sooner would only lengthen it);
- an unreachable Telegram postpones just this item, by the retry policy's delay;
- a refused token stops the share and is reported (the caller takes the bot out of
  service once, through ``bots.service.token_rejected``);
- any other refusal is recorded against the item;
- another worker owns the bot (NotOwner, telegram/ownership.py): the item and every one
  not reached yet move to that worker's queue (``moved``, ``moved_to``), none is lost.
A database that does not answer in time (db.is_busy: a pool, lock or statement
timeout) postpones the item like an unreachable Telegram; when it meets the share's own
reads or writes, the caller postpones the whole share (``postpone_all``), never the
whole job.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from botmgr.db import is_busy
from botmgr.tasks.names import RetryPolicy
from botmgr.telegram.gateway import (
    FloodWait,
    LookupFlood,
    TelegramError,
    TelegramUnavailable,
    TokenInvalid,
)
from botmgr.telegram.ownership import NotOwner

T = TypeVar("T")
X = TypeVar("X")

IN_FLIGHT = 4  # per bot: ≥ rate × latency (30/s × 50 ms needs 1.5)


class Skipped(enum.Enum):
    """What ``BotShare.call`` answers for a call that did not run or did not succeed."""

    SKIPPED = 0


SKIPPED = Skipped.SKIPPED


class BotShare:
    def __init__(self, policy: RetryPolicy, *, in_flight: int = IN_FLIGHT) -> None:
        self.policy = policy
        self.in_flight = in_flight
        self.stop_wait: int | None = None  # a FLOOD_WAIT stopped the share
        self.token_error: str | None = None  # Telegram refused the bot's token
        self.postponed: dict[int, int] = {}  # item key → seconds to wait
        self.failed: dict[int, str] = {}  # item key → Telegram's reason
        self.moved: list[int] = []  # item keys for the bot's owner, on ``moved_to``
        self.moved_to: str | None = None

    def postpone(self, key: int, seconds: int) -> None:
        self.postponed.setdefault(key, seconds)

    async def call(self, key: int, fn: Callable[[], Awaitable[T]]) -> T | Skipped:
        if self.token_error is not None or key in self.postponed:
            return SKIPPED
        if self.moved_to is not None:
            self.moved.append(key)
            return SKIPPED
        if self.stop_wait is not None:
            self.postpone(key, self.stop_wait)
            return SKIPPED
        try:
            return await fn()
        except LookupFlood as exc:
            # Only this item needed a username lookup: the bot's other items go on.
            self.postpone(key, self.policy.delay(exc))
        except FloodWait as exc:
            self.stop_wait = max(self.stop_wait or 0, self.policy.delay(exc))
            self.postpone(key, self.stop_wait)
        except TelegramUnavailable as exc:
            self.postpone(key, self.policy.delay(exc))
        except NotOwner as exc:
            self.moved_to = exc.queue
            self.moved.append(key)
        except TokenInvalid as exc:
            self.token_error = exc.reason
        except TelegramError as exc:
            self.failed[key] = exc.reason
        except Exception as exc:
            if not is_busy(exc):
                raise
            self.postpone(key, self.policy.later())
        return SKIPPED

    def postpone_all(self, keys: Iterable[int]) -> None:
        """The share's own database work did not get through in time: all of it again
        later (what a FLOOD_WAIT already postponed keeps its own wait)."""
        for key in keys:
            self.postpone(key, self.policy.later())

    async def each(self, items: Iterable[X], work: Callable[[X], Awaitable[None]]) -> None:
        """``work(item)`` for every item, ``in_flight`` at a time: a few workers take
        items in turn, rather than one waiting task per item (10,000 of them in a big
        sweep, all contending for the same budget)."""
        pending = iter(items)

        async def worker() -> None:
            for item in pending:  # shared: each item is taken by one worker
                await work(item)

        await asyncio.gather(*(worker() for _ in range(self.in_flight)))

    def postponed_groups(self) -> list[tuple[list[int], int]]:
        """The postponed keys grouped by their wait: one later job per group."""
        by_wait: dict[int, list[int]] = {}
        for key, seconds in self.postponed.items():
            by_wait.setdefault(seconds, []).append(key)
        return [(sorted(keys), seconds) for seconds, keys in sorted(by_wait.items())]


async def run_shares(shares: Iterable[Awaitable[None]], at_once: int | None) -> None:
    """Await every bot's share, at most ``at_once`` at a time (None: all at once). The
    worker passes its client pool's cap: more shares would only queue for clients there
    and, worse, evict each other's clients between their calls. The shares are made as
    they start, so 10,000 bots are not 10,000 waiting tasks. Several jobs at once may
    still ask for more bots than the cap: the pool then streams them (no deadlock)."""
    if at_once is None:
        await asyncio.gather(*shares)
        return
    pending = iter(shares)

    async def runner() -> None:
        for share in pending:  # shared: each share is started by one runner
            await share

    await asyncio.gather(*(runner() for _ in range(at_once)))
