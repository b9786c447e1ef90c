"""Telegram's limits on what a post may carry, and the checks that refuse the rest with
a 422 before anything is queued.

Where each number comes from:

- Buttons: at most ``BUTTONS_PER_ROW`` = 8 a row and ``BUTTONS_MAX`` = 100 under one
  message. Telegram does not document these; they are the values Telegram enforces as
  found by python-telegram-bot (``telegram.constants.InlineKeyboardMarkupLimit``:
  TOTAL_BUTTON_NUMBER = 100, BUTTONS_PER_ROW = 8, "undocumented and might be changed by
  Telegram"). A button's URL is ``http(s)://`` or ``tg://`` (keyboardButtonUrl: clients
  open other schemes nowhere useful; ``javascript:`` and the like are refused). Button
  text (1–64 characters) and URL length (≤ 2048) are this service's caps: Telegram shows a
  button's text on one line, and 2048 is what browsers and proxies reliably carry.
- Caption: 0–1024 characters after entities parsing (Bot API sendPhoto/sendVideo/
  sendDocument ``caption``); a text message is 4096 (posts/markdown.py enforces that).
- Albums: 2–10 items (messages.sendMultiMedia; Bot API sendMediaGroup "2-10 items").
- ``delete_after``: at most 48 hours, because "a message can only be deleted if it was
  sent less than 48 hours ago" (Bot API deleteMessage) — later, Telegram would refuse.
- Fan-out: ``FAN_OUT_MAX`` channels per request, this service's cap (one transaction
  creates them all; a larger fleet posts in several requests).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from botmgr.errors import Invalid
from botmgr.telegram.rich import ALBUM_MAX, ALBUM_MIN, Buttons, UrlButton

__all__ = ["ALBUM_MAX", "ALBUM_MIN"]

BUTTONS_PER_ROW = 8
BUTTONS_MAX = 100
BUTTON_TEXT_MAX = 64
BUTTON_URL_MAX = 2048
URL_SCHEMES = ("http", "https", "tg")
CAPTION_MAX = 1024
DELETE_AFTER_MAX = 48 * 3600
FAN_OUT_MAX = 100


def check_url(url: str) -> str:
    """``url`` if a button may open it, else Invalid saying why."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise Invalid(f"button url {url!r} is not a URL") from exc
    scheme = parts.scheme.lower()
    if scheme not in URL_SCHEMES:
        raise Invalid(f"button url {url!r}: only http(s):// and tg:// links are allowed")
    if scheme in ("http", "https") and not parts.hostname:
        raise Invalid(f"button url {url!r} has no host")
    if scheme == "tg" and not (parts.netloc or parts.path):
        raise Invalid(f"button url {url!r} names no tg:// action")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise Invalid(f"button url {url!r} contains spaces or control characters")
    return url


def buttons(rows: Iterable[Iterable[Mapping[str, str]]] | None) -> list[list[dict[str, str]]]:
    """The rows as stored (``[[{"text", "url"}]]``), validated; ``None`` → no buttons."""
    if rows is None:
        return []
    stored: list[list[dict[str, str]]] = []
    total = 0
    for number, row in enumerate(rows, start=1):
        kept = [{"text": b["text"], "url": check_url(b["url"])} for b in row]
        if not kept:
            raise Invalid(f"buttons: row {number} is empty")
        if len(kept) > BUTTONS_PER_ROW:
            raise Invalid(
                f"buttons: row {number} has {len(kept)} buttons, Telegram allows "
                f"{BUTTONS_PER_ROW} a row"
            )
        for button in kept:
            if not button["text"].strip():
                raise Invalid(f"buttons: a button of row {number} has no text")
        total += len(kept)
        stored.append(kept)
    if total > BUTTONS_MAX:
        raise Invalid(f"buttons: {total} buttons, Telegram allows {BUTTONS_MAX} under a message")
    return stored


def as_markup(stored: Sequence[Sequence[Mapping[str, str]]]) -> Buttons:
    """Stored rows → the gateway's rows of UrlButton."""
    return tuple(tuple(UrlButton(b["text"], b["url"]) for b in row) for row in stored)
