"""Redis key and queue names of the fleet, shared by the workers (which hold leases) and
every publisher (which routes a bot's tasks to its owner's queue)."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass

from botmgr.tasks.names import QUEUE

#: kombu keeps a queue's messages of priority p > 0 under "<queue>\x06\x16<p>"
#: (kombu/transport/redis.py: Channel.sep, PRIORITY_STEPS).
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def new_worker_id() -> str:
    """Unique per process, readable in logs: host, pid and a random tail (a restarted
    process with a recycled pid is another worker)."""
    host = socket.gethostname().replace("|", "-") or "host"
    return f"{host}.{os.getpid()}.{secrets.token_hex(3)}"


def worker_queue(worker_id: str) -> str:
    """The queue only that worker consumes (besides the shared ``QUEUE``)."""
    return f"{QUEUE}.w.{worker_id}"


def owner_of(lease_value: str) -> str:
    """The worker id in a lease value ``"<worker>|<fence>"``."""
    return lease_value.partition("|")[0]


@dataclass(frozen=True, slots=True)
class FleetKeys:
    prefix: str  # BOTMGR_REDIS_PREFIX: kombu puts it before every key too

    @property
    def lease_prefix(self) -> str:
        return f"{self.prefix}fleet:lease:"

    def lease(self, bot_id: int) -> str:
        return f"{self.lease_prefix}{bot_id}"

    @property
    def fence(self) -> str:
        return f"{self.prefix}fleet:fence"

    @property
    def owned_prefix(self) -> str:
        return f"{self.prefix}fleet:owned:"

    def owned(self, worker_id: str) -> str:
        return f"{self.owned_prefix}{worker_id}"

    @property
    def workers(self) -> str:  # zset: worker → end of its registration (ms, Redis time)
        return f"{self.prefix}fleet:workers"

    @property
    def load(self) -> str:  # hash: worker → bots it holds
        return f"{self.prefix}fleet:load"

    @property
    def gone(self) -> str:  # zset: worker → when it stopped or was found dead (ms)
        return f"{self.prefix}fleet:gone"

    @property
    def pace_prefix(self) -> str:
        return f"{self.prefix}fleet:pace:"

    def pace(self, bot_id: int) -> str:
        return f"{self.pace_prefix}{bot_id}"

    def queue_lists(self, queue: str) -> list[str]:
        """The Redis lists kombu keeps ``queue``'s messages in."""
        return [f"{self.prefix}{queue}{suffix}" for suffix in _PRIORITY_SUFFIXES]
