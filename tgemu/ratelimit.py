"""Telegram's sending limits for bots, as token buckets.

Bot FAQ: about 30 messages per second per bot across all chats, about 20 messages per
minute per group/channel with short bursts allowed. A send that finds a bucket empty is
refused with FLOOD_WAIT_X, X being the real time (rounded up, at least 1 s) until the
bucket holds a token again; nothing is consumed by a refused send.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field


@dataclass
class RateLimitConfig:
    enabled: bool = True
    bot_per_second: float = 30.0
    bot_burst: int = 30
    channel_per_minute: float = 20.0
    channel_burst: int = 10


@dataclass
class _Bucket:
    capacity: float
    rate: float  # tokens per second
    tokens: float
    updated: float = field(default_factory=time.monotonic)

    def refill(self, at: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (at - self.updated) * self.rate)
        self.updated = at

    def wait(self) -> float:
        """Seconds until one token is available (0 when one is)."""
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


class RateLimiter:
    def __init__(self, config: RateLimitConfig | None = None) -> None:
        self.config = config or RateLimitConfig()
        self._bots: dict[int, _Bucket] = {}
        self._channels: dict[int, _Bucket] = {}

    def reset(self) -> None:
        self._bots.clear()
        self._channels.clear()

    def reconfigure(self, **changes: float | bool) -> None:
        for name, value in changes.items():
            if not hasattr(self.config, name):
                raise ValueError(f"unknown rate limit setting {name!r}")
            setattr(self.config, name, type(getattr(self.config, name))(value))
        self.reset()  # buckets were sized for the old settings

    def check_send(self, bot_id: int, channel_id: int) -> int:
        """Take one message from both buckets, or return the FLOOD_WAIT seconds (> 0)."""
        if not self.config.enabled:
            return 0
        at = time.monotonic()
        cfg = self.config
        buckets = (
            _get(self._bots, bot_id, cfg.bot_burst, cfg.bot_per_second),
            _get(self._channels, channel_id, cfg.channel_burst, cfg.channel_per_minute / 60),
        )
        for bucket in buckets:
            bucket.refill(at)
        wait = max(bucket.wait() for bucket in buckets)
        if wait > 0:
            return max(1, math.ceil(wait))
        for bucket in buckets:
            bucket.tokens -= 1
        return 0


def _get(buckets: dict[int, _Bucket], key: int, capacity: float, rate: float) -> _Bucket:
    bucket = buckets.get(key)
    if bucket is None:
        bucket = buckets[key] = _Bucket(capacity=capacity, rate=rate, tokens=capacity)
    return bucket
