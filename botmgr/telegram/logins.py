"""A bot's login floods: "no token login before T" per Telegram bot.

Telegram answers repeated auth.importBotAuthorization with FLOOD_WAITs of 1,000-3,000 s
that grow when logins keep coming (reports on several bot projects; Telethon keeps such
waits per request type in ``_flood_waited_requests``, client/users.py). A wait it gave
is respected here, and stored on the bot row through ``BotMemory`` so that other tasks
and processes respect it too, instead of asking again.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta

from botmgr.telegram.gateway import BotMemory, FloodWait

log = logging.getLogger(__name__)


class LoginFloods:
    """ "No token login before T" per Telegram bot. Telegram answers repeated
    auth.importBotAuthorization with FLOOD_WAITs of 1,000-3,000 s that grow when logins
    keep coming: a wait it gave is respected here (and stored on the bot row through
    ``BotMemory``, so other tasks and processes respect it too) instead of asking again."""

    def __init__(self, memory: BotMemory | None) -> None:
        self._memory = memory
        self._until: dict[str, datetime] = {}  # Telegram bot id (token prefix) → not before

    def check(self, token: str, stored: datetime | None = None) -> None:
        """Raise FloodWait (the remaining seconds) while a login of this bot must wait."""
        until = max(
            (t for t in (self._until.get(_tg_bot(token)), stored) if t is not None), default=None
        )
        left = (until - datetime.now(UTC)).total_seconds() if until is not None else 0
        if left > 0:
            raise FloodWait(max(1, math.ceil(left)))

    async def note(self, bot_id: int | None, token: str, seconds: int) -> None:
        until = datetime.now(UTC) + timedelta(seconds=seconds)
        key = _tg_bot(token)
        self._until[key] = max(until, self._until.get(key, until))
        if self._memory is None or bot_id is None:
            return
        try:
            await self._memory.login_flood(bot_id, until)
        except Exception as exc:  # the wait is still respected in this process
            log.error("bot %s: storing its login flood wait failed (%s)", bot_id, exc)


def _tg_bot(token: str) -> str:
    return token.partition(":")[0]
