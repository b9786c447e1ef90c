"""Pacing of every call a process makes to Telegram, so the service stays under
Telegram's flood limits instead of collecting FLOOD_WAITs (Telegram lengthens the waits
of clients that keep hitting them). The gateway owns one Pacer: sends and reads of a bot
share one budget, whichever caller (a post, a sweep, the stats) makes them.

GCRA (a token bucket kept as one "theoretical arrival time" per key): per bot 30
calls/s with a burst of 30, per channel 20 messages a minute with a burst of 10 (the
limits tgemu enforces and the Bot FAQ states), each run 5 % below its rate. A message
needs a slot in both its bot's and its channel's bucket; any other call only in its
bot's (Telegram publishes no limit for reads; keeping them inside the send budget keeps
a sweep of thousands of bindings well inside what it tolerates).

A send's wait up to ``sleep_max`` is slept on the event loop; a longer one reserves the
slot for the message's ``random_id`` and raises FloodWait, so the task is retried when
the slot comes and finds it still its own (not pushed back behind later messages).
Limits are per process: several worker processes each pace alone, and Telegram's own
FLOOD_WAITs remain the backstop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable

# (seconds between messages, burst); 5 % slower than the limits themselves, since sends
# leave with some jitter and a bucket run exactly at its rate has no slack for it.
MARGIN = 1.05
BOT = (MARGIN / 30, 30)
CHANNEL = (MARGIN * 60 / 20, 10)


class Pacer:
    def __init__(
        self,
        *,
        bot: tuple[float, int] = BOT,
        channel: tuple[float, int] = CHANNEL,
        sleep_max: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = {"bot": bot, "channel": channel}
        self.sleep_max = sleep_max
        self._clock = clock
        self._tat: dict[tuple[str, Hashable], float] = {}
        self._slots: dict[int, float] = {}  # random_id → reserved start
        self._calls = 0

    def reserve_call(self, bot: Hashable, *, max_wait: float) -> float:
        """Seconds until a call (not a send) of ``bot`` may start. A wait up to
        ``max_wait`` takes the slot (the caller sleeps it); a longer one takes nothing
        (the caller gives up with a FloodWait of that many seconds)."""
        now = self._clock()
        self._prune(now)
        interval, burst = self._limits["bot"]
        key = ("bot", bot)
        start = max(now, self._tat.get(key, now) - interval * (burst - 1))
        wait = start - now
        if wait > max_wait:
            return wait
        self._tat[key] = max(self._tat.get(key, now), start) + interval
        return wait if wait > 1e-6 else 0.0

    def reserve(self, bot: Hashable, channel_id: int, random_id: int) -> float:
        """Seconds until this message may be sent (0: now); the slot is taken either way."""
        now = self._clock()
        self._prune(now)
        slot = self._slots.get(random_id)
        if slot is not None:
            if slot > now:
                return slot - now  # asked again early: the rest of the wait (maybe slept)
            del self._slots[random_id]
            return 0.0
        keys: tuple[tuple[str, Hashable], ...] = (("bot", bot), ("channel", channel_id))
        start = now
        for key in keys:
            interval, burst = self._limits[key[0]]
            start = max(start, self._tat.get(key, now) - interval * (burst - 1))
        for key in keys:
            self._tat[key] = max(self._tat.get(key, now), start) + self._limits[key[0]][0]
        wait = start - now
        if wait <= 1e-6:  # float rounding of a slot that is due now
            return 0.0
        if wait > self.sleep_max:
            self._slots[random_id] = start
        return wait

    def retry_after(self, wait: float) -> int:
        """Whole seconds for a task retry's countdown (never early)."""
        return max(1, math.ceil(wait))

    def _prune(self, now: float) -> None:
        self._calls += 1
        if self._calls % 1000:
            return
        # A key whose arrival time has passed is a full bucket, as if absent; a slot long
        # past belongs to a message that never came back (failed, or another process).
        self._tat = {k: t for k, t in self._tat.items() if t > now}
        self._slots = {r: s for r, s in self._slots.items() if s > now - 600}
