"""A worker process's bots: Redis leases it takes, renews, hands back and loses.

One worker process at a time owns a bot (telegram/ownership.py says why). The rules:
- A worker registers in ``fleet:workers`` until Redis time + ``ttl`` and renews that and
  every lease it holds in one heartbeat every ``ttl / 5`` seconds.
- It uses a bot only while it holds the lease *by its own clock*: until the send time
  of the last renewal that succeeded + ttl − margin. Redis keeps the lease (and the
  registration) at least until that send time + ttl, so the worker has stopped before
  anyone else may start, even when Redis is unreachable or the process was paused.
- A worker whose registration ended is dead: the first live worker to notice retires it
  (scripts.RETIRE: its leases are freed) and moves the messages of its queue to the
  shared queue, and keeps doing so for a while (``gone_seconds``): kombu restores a dead
  worker's unacknowledged messages to the queue they came from after the visibility
  timeout. A SIGKILLed worker's bots thus move within ``ttl`` seconds.
- Balance: a worker takes a free bot only while it holds fewer than its fair share
  (the bots held over the live workers, rounded up, judged in Redis at that moment);
  otherwise the work goes to the least loaded worker's queue. A worker holding more
  than its share (a worker joined) hands back idle bots down to its share: client
  disconnected first, then the lease deleted, so their next task goes to a worker
  with room.
- A worker that stops (SIGTERM) hands back every bot and moves its queue to the shared
  queue before it exits.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

from botmgr.fleet import scripts
from botmgr.fleet.keys import FleetKeys, owner_of, worker_queue
from botmgr.tasks.names import QUEUE
from botmgr.telegram.ownership import Handover, NotOwner

log = logging.getLogger(__name__)

#: Forwards a task has had; past MAX_HOPS a worker takes a free bot whatever its share
#: (heartbeats may lag: never bounce a task between workers for long).
HOPS: contextvars.ContextVar[int] = contextvars.ContextVar("botmgr_fleet_hops", default=0)
MAX_HOPS = 3
DRAIN_BATCH = 1000
PACE_KEEP_MS = 120_000  # past this every bucket has refilled (a channel's: 30 s)

Hook = Callable[[int], Awaitable[None]]


@dataclass(slots=True)
class _Held:
    value: str  # "<worker>|<fence>"
    until: float  # monotonic: stop using the bot at this time unless renewed


class Fleet:
    def __init__(
        self,
        redis: Redis,
        keys: FleetKeys,
        worker_id: str,
        *,
        ttl: float = 10.0,
        gone_seconds: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.me = worker_id
        self.queue = worker_queue(worker_id)
        self.ttl = ttl
        self.margin = ttl / 5  # below the renewal period: at least one renewal may fail
        self.gone_seconds = gone_seconds
        self._clock = clock
        self.held: dict[int, _Held] = {}
        self.others: dict[str, int] = {}  # live workers → bots they hold (last heartbeat)
        self._active: Counter[int] = Counter()  # calls running under each bot's lease
        self._used: dict[int, float] = {}  # bot → last use (monotonic), for hand-backs
        self._locks: dict[int, asyncio.Lock] = {}
        self._scripts = {
            name: redis.register_script(getattr(scripts, name))
            for name in ("ACQUIRE", "HEARTBEAT", "RETIRE", "RELEASE", "DRAIN")
        }
        self._task: asyncio.Task[None] | None = None
        # What the gateway does when the process stops owning a bot: disconnect its
        # client (before the lease is freed), hand over its pacing state.
        self.on_lost: Hook | None = None
        self.pace_of: Callable[[int], dict[str, float]] | None = None
        self._handovers: dict[int, Handover] = {}  # for the first hold after a take
        self._exported = 0.0  # when the pacing states were last written
        # Observability (tests, benchmarks).
        self.taken = self.handed_back = self.lost = self.retired = self.drained = 0

    @property
    def interval(self) -> float:
        return self.ttl / 5

    # ------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Register (before any task is taken), then keep beating."""
        await self.beat()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="botmgr-fleet")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.beat()
            except Exception as exc:  # Redis down: the leases run out by their deadline
                log.warning("fleet heartbeat failed: %s", type(exc).__name__)

    async def stop(self) -> None:
        """Hand back every bot and the queue's messages, leave the registry."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        for bot_id in list(self.held):
            await self._drop(bot_id)
        try:
            await self._script("RETIRE")(
                keys=[self.keys.workers, self.keys.load, self.keys.gone, self.keys.owned(self.me)],
                args=[self.me, self.keys.lease_prefix, 1],
            )
            await self._drain(self.queue)
        except Exception as exc:
            log.warning("fleet: leaving the registry failed (%s)", type(exc).__name__)

    # ------------------------------------------------------------- holding
    @asynccontextmanager
    async def hold(self, bot_id: int) -> AsyncIterator[Handover | None]:
        await self.claim(bot_id)
        self._active[bot_id] += 1
        try:
            yield self._handovers.pop(bot_id, None)
        finally:
            self._active[bot_id] -= 1
            if not self._active[bot_id]:
                del self._active[bot_id]
            self._used[bot_id] = self._clock()

    async def place(self, bot_ids: Sequence[int]) -> dict[str, list[int]] | None:
        """Where each bot's share of a fleet-wide job runs (Ownership.place): a live
        owner keeps its bots; a free bot goes to the live worker holding the fewest,
        counting those placed so far. Judged on the last heartbeat's view of the
        workers: advice only, ownership is still checked at each call."""
        if not self.others:  # alone: every bot is, or may become, this process's
            return None
        values: list[Any] = []
        for start in range(0, len(bot_ids), DRAIN_BATCH):
            batch = bot_ids[start : start + DRAIN_BATCH]
            values += await self.redis.mget([self.keys.lease(b) for b in batch])
        loads = {self.me: len(self.held), **self.others}
        parts: dict[str, list[int]] = {}
        free: list[int] = []
        for bot_id, value in zip(bot_ids, values, strict=True):
            owner = owner_of(_text(value)) if value else None
            if owner in loads:
                parts.setdefault(owner, []).append(bot_id)
            else:  # nobody's, or a dead worker's (retired at the next heartbeat)
                free.append(bot_id)
        for bot_id in free:
            worker = min(loads, key=lambda w: (loads[w], w != self.me))
            loads[worker] += 1
            parts.setdefault(worker, []).append(bot_id)
        if set(parts) <= {self.me}:
            return None
        return {worker_queue(w): bots for w, bots in parts.items()}

    def holds(self, bot_id: int) -> bool:
        held = self.held.get(bot_id)
        return held is not None and self._clock() < held.until

    async def claim(self, bot_id: int) -> None:
        """Hold the bot (renewed by the heartbeat) or raise NotOwner naming the queue
        the work should go to: its live owner's, or the least loaded worker's."""
        if self.holds(bot_id):
            return
        async with self._lock(bot_id):
            if self.holds(bot_id):
                return
            if bot_id in self.held:  # past its deadline: renewals failed
                await self._lose(bot_id)
            force = HOPS.get() >= MAX_HOPS
            sent = self._clock()
            answer = await self._script("ACQUIRE")(
                keys=[
                    self.keys.lease(bot_id),
                    self.keys.fence,
                    self.keys.owned(self.me),
                    self.keys.workers,
                    self.keys.load,
                ],
                args=[self.me, int(self.ttl * 1000), 1 if force else 0, bot_id],
            )
            status, value = int(answer[0]), _text(answer[1])
            if status in (1, 2):
                self.held[bot_id] = _Held(value, sent + self.ttl - self.margin)
                if status == 2:
                    self.taken += 1
                    log.info("fleet: %s takes bot %s (%s)", self.me, bot_id, value)
                    await self._receive_pace(bot_id)
                    # Marked in use from now: if this process dies before its next
                    # export, the next owner knows its buckets may be spent.
                    await self._send_pace([bot_id], final=False)
                return
            if status == 0:
                raise NotOwner(bot_id, worker_queue(owner_of(value)))
            raise NotOwner(bot_id, worker_queue(value))  # free: for the least loaded

    # ------------------------------------------------------------- heartbeat
    async def beat(self) -> None:
        for bot_id, held in list(self.held.items()):
            if self._clock() >= held.until:
                await self._lose(bot_id)
        sent = self._clock()
        renewing = dict(self.held)
        args: list[Any] = [self.me, int(self.ttl * 1000), self.keys.lease_prefix]
        for bot_id, held in renewing.items():
            args += [bot_id, held.value]
        lost, live, dead, _now = await self._script("HEARTBEAT")(
            keys=[self.keys.workers, self.keys.load, self.keys.owned(self.me)], args=args
        )
        for bot_id in map(int, lost):
            if bot_id in self.held and self.held[bot_id].value == renewing[bot_id].value:
                await self._lose(bot_id)
        for bot_id, held in renewing.items():
            current = self.held.get(bot_id)
            if current is not None and current.value == held.value:
                current.until = max(current.until, sent + self.ttl - self.margin)
        pairs = [_text(x) for x in live]
        self.others = {
            w: int(n) for w, n in zip(pairs[::2], pairs[1::2], strict=True) if w != self.me
        }
        for worker in map(_text, dead):
            await self._retire(worker)
        await self._drain_gone()
        used = [b for b in self.held if self._used.get(b, 0.0) >= self._exported]
        self._exported = sent
        await self._send_pace(used, final=False)
        await self._hand_back()

    async def _retire(self, worker: str) -> None:
        retired = await self._script("RETIRE")(
            keys=[self.keys.workers, self.keys.load, self.keys.gone, self.keys.owned(worker)],
            args=[worker, self.keys.lease_prefix, 0],
        )
        if int(retired):
            self.retired += 1
            log.warning("fleet: worker %s stopped beating; its bots are free", worker)

    async def _drain_gone(self) -> None:
        now_ms = int(time.time() * 1000)
        since = now_ms - int(self.gone_seconds * 1000)
        gone = await self.redis.zrangebyscore(self.keys.gone, since, "+inf")
        for worker in map(_text, gone):
            if worker != self.me:
                await self._drain(worker_queue(worker))
        await self.redis.zremrangebyscore(self.keys.gone, "-inf", f"({since}")

    async def _drain(self, queue: str) -> int:
        moved = int(
            await self._script("DRAIN")(
                keys=[*self.keys.queue_lists(QUEUE)[:1], *self.keys.queue_lists(queue)],
                args=[DRAIN_BATCH],
            )
        )
        if moved:
            self.drained += moved
            log.warning("fleet: moved %s queued tasks of %s to the shared queue", moved, queue)
        return moved

    async def _hand_back(self) -> None:
        workers = len(self.others) + 1
        share = math.ceil((sum(self.others.values()) + len(self.held)) / workers)
        if len(self.held) <= share:
            return
        idle = sorted(
            (b for b in self.held if not self._active.get(b)), key=lambda b: self._used.get(b, 0)
        )
        for bot_id in idle[: len(self.held) - share]:
            async with self._lock(bot_id):
                if self._active.get(bot_id) or bot_id not in self.held:
                    continue
                await self._drop(bot_id)
                self.handed_back += 1

    async def _drop(self, bot_id: int) -> None:
        """Stop owning the bot on purpose: client first, then the lease."""
        held = self.held.pop(bot_id, None)
        if held is None:
            return
        if self.on_lost is not None:
            await self.on_lost(bot_id)
        try:
            await self._send_pace([bot_id], final=True)
        except Exception as exc:  # the next owner starts with full buckets, Telegram warns
            log.warning("fleet: bot %s's pacing state not handed over (%s)", bot_id, exc)
        await self._script("RELEASE")(
            keys=[self.keys.lease(bot_id), self.keys.owned(self.me), self.keys.load],
            args=[held.value, bot_id, self.me],
        )

    async def _lose(self, bot_id: int) -> None:
        """The lease ran out (or went to another worker) under us."""
        if self.held.pop(bot_id, None) is None:
            return
        self.lost += 1
        log.warning("fleet: %s lost bot %s's lease", self.me, bot_id)
        if self.on_lost is not None:
            await self.on_lost(bot_id)

    # ------------------------------------------------------------- pacing state
    async def _receive_pace(self, bot_id: int) -> None:
        raw = await self.redis.get(self.keys.pace(bot_id))
        if not raw:
            return
        kept = json.loads(raw)
        # Handed back: exact. From a dead owner: it may have sent for one more beat, and
        # spent any bucket (even one that was full when it last exported).
        died = not kept.get("final")
        self._handovers[bot_id] = Handover(
            kept.get("pace", {}), self.interval if died else 0.0, died=died
        )

    async def _send_pace(self, bot_ids: list[int], *, final: bool) -> None:
        if not bot_ids:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for bot_id in bot_ids:  # written even when every bucket is full: "in use"
                state = self.pace_of(bot_id) if self.pace_of is not None else {}
                body = json.dumps({"pace": state, "final": final})
                pipe.set(self.keys.pace(bot_id), body, px=PACE_KEEP_MS)
            await pipe.execute()

    def _lock(self, bot_id: int) -> asyncio.Lock:
        return self._locks.setdefault(bot_id, asyncio.Lock())

    def _script(self, name: str) -> Callable[..., Awaitable[Any]]:
        return cast("Callable[..., Awaitable[Any]]", self._scripts[name])


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
