"""The Telegram client every connection of the service is made with: Telethon's, with
each request counted (botmgr/metrics.py) where it is sent.

``_call`` is the one place Telethon 1.45 (pinned) sends a request of any caller — a
gateway method, a login, ``help.getConfig`` for the DC map, a re-sign-in after
USER_MIGRATE — so counting there sees every call once, whichever layer made it, and
the error as Telegram (or the network) gave it, before the gateway maps it to a domain
error. Requests Telethon makes on its own behalf while connecting (initConnection,
the auth-key exchange) go through the sender directly and are not counted.
"""

from __future__ import annotations

from typing import Any

from telethon import TelegramClient
from telethon import errors as tg

from botmgr import metrics
from botmgr.telegram.errors import error_name


class MeteredClient(TelegramClient):  # type: ignore[misc]  # Telethon is untyped
    async def _call(self, sender: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        method = metrics.method_of(request)
        try:
            result = await super()._call(sender, request, *args, **kwargs)
        except Exception as exc:
            flood = getattr(exc, "seconds", None) if isinstance(exc, tg.FloodError) else None
            metrics.telegram_call(
                method, error_name(exc), float(flood) if flood is not None else None
            )
            raise
        except BaseException:  # cancelled: no answer, no error of Telegram's
            metrics.telegram_call(method)
            raise
        metrics.telegram_call(method)
        return result
