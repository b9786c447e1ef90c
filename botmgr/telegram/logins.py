"""A bot's logins: a token checked with a throw-away client (``check_token``), a stored
session resumed alone (``resume_session``), and the login floods: "no token login before
T" per Telegram bot.

Telegram answers repeated auth.importBotAuthorization with FLOOD_WAITs of 1,000-3,000 s
that grow when logins keep coming (reports on several bot projects; Telethon keeps such
waits per request type in ``_flood_waited_requests``, client/users.py). A wait it gave
is respected here, and stored on the bot row through ``BotMemory`` so that other tasks
and processes respect it too, instead of asking again.
"""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import UTC, datetime, timedelta

from botmgr.telegram.clients import (
    ClientSettings,
    disconnect_quietly,
    open_client,
    sign_in,
    who_am_i,
)
from botmgr.telegram.errors import to_domain
from botmgr.telegram.gateway import (
    BotMemory,
    BotProfile,
    FloodWait,
    TelegramError,
    TokenInvalid,
)

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


async def check_token(
    settings: ClientSettings, floods: LoginFloods, token: str, *, within: float
) -> BotProfile:
    """Log in with ``token`` on a throw-away client (disconnected at the end) and say who
    it is; the caller stores the session it made."""
    floods.check(token)  # a login flood of this bot, learnt in this process
    client = None
    try:
        async with asyncio.timeout(within):
            client = await open_client(settings, None)
            me = await sign_in(client, token)  # follows USER_MIGRATE to its home DC
            session = client.session.save()  # with that DC and its address
    except TelegramError:
        raise
    except Exception as exc:
        error = to_domain(exc, fallback=TokenInvalid)
        if isinstance(error, FloodWait):
            await floods.note(None, token, error.seconds)
        raise error from None
    finally:
        if client is not None:
            await disconnect_quietly(client)
    return BotProfile(
        tg_id=me.id, username=me.username or "", first_name=me.first_name or "", session=session
    )


async def resume_session(settings: ClientSettings, session: str, *, within: float) -> BotProfile:
    """Connect with a stored session alone (never a token) and say whose it is."""
    client = None
    try:
        async with asyncio.timeout(within):
            client = await open_client(settings, session)  # its stored DC
            me = await who_am_i(client)
    except TelegramError:
        raise
    except Exception as exc:
        raise to_domain(exc, fallback=TokenInvalid) from None
    finally:
        if client is not None:
            await disconnect_quietly(client)
    if me is None:
        raise TokenInvalid("the stored session is not authorized any more")
    return BotProfile(me.id, me.username or "", me.first_name or "", session=session)
