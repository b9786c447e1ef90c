"""Flood budgets of the calls Telegram guards hardest, per bot.

- ``contacts.resolveUsername``: Telegram floods it hardest of all (waits of many hours
  are reported) and asks clients to persist id + access_hash instead of re-resolving
  (core.telegram.org/api/peers; Telethon keeps a local ``_flood_waited_requests`` per
  request type for that reason, telethon/client/users.py). Modelled as an hourly token
  bucket per bot; the exact budget is not published (an assumption, see the README).
- ``auth.importBotAuthorization``: repeated logins earn FLOOD_WAITs of 1,600–3,100 s that
  grow on repeats (reports on several bot projects). Modelled as a few logins per sliding
  window per bot; past them a wait of at least ``login_flood_seconds`` that is multiplied
  by ``login_flood_growth`` for every further attempt made into it.
A refused call consumes nothing of the budget; the wait is the real remaining time.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class FloodConfig:
    enabled: bool = True
    resolve_per_hour: float = 50.0
    login_per_window: int = 5
    login_window_seconds: float = 600.0
    login_flood_seconds: float = 1000.0
    login_flood_growth: float = 1.5


@dataclass
class _LoginState:
    recent: deque[float] = field(default_factory=deque)  # times of granted logins
    until: float = 0.0  # no login before
    strikes: int = 0  # floods earned so far: each one longer


@dataclass
class _Bucket:
    tokens: float
    updated: float


class FloodBudgets:
    def __init__(
        self, config: FloodConfig | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config or FloodConfig()
        self._clock = clock
        self._resolves: dict[int, _Bucket] = {}
        self._logins: dict[int, _LoginState] = {}

    def reset(self) -> None:
        self._resolves.clear()
        self._logins.clear()

    def check_resolve(self, bot_id: int) -> int:
        """Take one resolve of ``bot_id``'s hourly budget, or return the FLOOD_WAIT (> 0)."""
        cfg = self.config
        if not cfg.enabled or cfg.resolve_per_hour <= 0:
            return 0
        now = self._clock()
        rate = cfg.resolve_per_hour / 3600
        bucket = self._resolves.setdefault(bot_id, _Bucket(cfg.resolve_per_hour, now))
        bucket.tokens = min(cfg.resolve_per_hour, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens < 1:
            return max(1, math.ceil((1 - bucket.tokens) / rate))
        bucket.tokens -= 1
        return 0

    def check_login(self, bot_id: int) -> int:
        """Grant one token login of ``bot_id`` or return the FLOOD_WAIT (> 0). Every
        attempt into a running wait lengthens it: hammering never gets through sooner."""
        cfg = self.config
        if not cfg.enabled or cfg.login_per_window <= 0:
            return 0
        now = self._clock()
        state = self._logins.setdefault(bot_id, _LoginState())
        while state.recent and state.recent[0] <= now - cfg.login_window_seconds:
            state.recent.popleft()
        if now < state.until or len(state.recent) >= cfg.login_per_window:
            wait = cfg.login_flood_seconds * cfg.login_flood_growth**state.strikes
            state.strikes += 1
            state.until = max(state.until, now + wait)
            return max(1, math.ceil(state.until - now))
        state.recent.append(now)
        return 0

    def reconfigure(self, **changes: float | bool) -> None:
        for name, value in changes.items():
            if not hasattr(self.config, name):
                raise ValueError(f"unknown flood setting {name!r}")
            setattr(self.config, name, type(getattr(self.config, name))(value))
        self.reset()
