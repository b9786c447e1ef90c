"""Which process may use a bot's session: the gateway asks before every call.

Telegram destroys an authorization key used from two addresses at once (406
AUTH_KEY_DUPLICATED, core.telegram.org/api/errors; tgemu's ``auth_key_duplicated``
rule), and re-logging a bot in from every process meets login flood waits of 1,000+ s.
So exactly one worker process at a time owns a bot (botmgr/fleet/: a Redis lease), and
the gateway of any other process refuses the call with ``NotOwner`` before it touches
the session: the task is forwarded to the owner's queue instead.

``NotOwner`` is deliberately not a TelegramError: nothing Telegram said, so no service
records it as a failure of the binding, post or bot; it goes up to the task adapter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol


class NotOwner(Exception):
    """Another process owns the bot (or should take it): run the work on ``queue``."""

    def __init__(self, bot_id: int, queue: str) -> None:
        super().__init__(f"bot {bot_id} belongs to the worker of queue {queue}")
        self.bot_id = bot_id
        self.queue = queue


@dataclass(frozen=True, slots=True)
class Handover:
    """The previous owner's pacing state of a bot just taken (clients.Pacer.export),
    to be absorbed ``margin`` seconds later still (what it may have sent unrecorded);
    ``died``: that owner did not hand the bot back, so any of its buckets may be spent."""

    pace: dict[str, float]
    margin: float
    died: bool = False


class Ownership(Protocol):
    def hold(self, bot_id: int) -> AbstractAsyncContextManager[Handover | None]:
        """Keep the bot's ownership while the block runs (acquiring it first if it is
        free and this process may take it); raises NotOwner otherwise. The first block
        after the bot came to this process gets the previous owner's Handover."""

    async def place(self, bot_ids: Sequence[int]) -> dict[str, list[int]] | None:
        """Where each bot's share of a fleet-wide job should run: None when this
        process is to run them all (no fleet, or every bot is or may become this
        process's); otherwise every bot under the queue of the worker that owns it (this
        process's own queue for its own), the free ones spread to even out the load."""


class Unowned:
    """One process (the API's token checks, ``botmgr doctor``, tests with no fleet):
    every bot is this process's own."""

    @asynccontextmanager
    async def hold(self, bot_id: int) -> AsyncIterator[Handover | None]:
        yield None

    async def place(self, bot_ids: Sequence[int]) -> dict[str, list[int]] | None:
        return None
