"""Reply markup under channel posts: rows of URL buttons (replyInlineMarkup).

In the pinned layer (229) a URL button is ``keyboardInlineButton(text,
inlineButtonTypeUrl(url))`` in a ``keyboardInlineButtonRow`` (Telethon's ``Button.url``
builds exactly that). Stored as ``[[{"text", "url"}]]``.

Telegram's limits (it documents none of them; these are the community's measurements):
- at most 8 buttons in a row and 100 in all, else REPLY_MARKUP_TOO_LONG
  (github.com/tginfo/Telegram-Limits issue 228: "max inline keyboard button : 100 …
  button per row : 8"; pyTelegramBotAPI's InlineKeyboardMarkup.max_row_keys = 8);
- the markup's serialized size at most 10 KB, else REPLY_MARKUP_TOO_LONG
  (tginfo/Telegram-Limits issue 187: "On markup json len > 10kB: Reply markup is too long").
URLs: http(s) with a host, or tg:// (Bot API InlineKeyboardButton.url: "HTTP or tg:// URL
to be opened"), else BUTTON_URL_INVALID; an empty text is BUTTON_TEXT_INVALID (both in
the messages.sendMessage / editMessage error lists). Assumptions: only URL buttons are
modelled (other inline button types → BUTTON_TYPE_INVALID here, though Telegram takes
callback buttons from bots); a reply keyboard (not inline) under a channel post →
REPLY_MARKUP_INVALID; an empty row → REPLY_MARKUP_INVALID.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from telethon.tl import types

from tgemu.rpc import RpcError

MAX_ROW = 8
MAX_BUTTONS = 100
MAX_MARKUP_BYTES = 10 * 1024

Rows = list[list[dict]]


def parse(markup: types.TypeReplyMarkup | None) -> Rows | None:
    """The rows of a request's reply markup (None: none given or an empty keyboard),
    with Telegram's refusals."""
    if markup is None:
        return None
    if not isinstance(markup, types.ReplyInlineMarkup):
        raise RpcError(400, "REPLY_MARKUP_INVALID")
    rows: Rows = []
    for row in markup.rows:
        if not row.buttons:
            raise RpcError(400, "REPLY_MARKUP_INVALID")
        if len(row.buttons) > MAX_ROW:
            raise RpcError(400, "REPLY_MARKUP_TOO_LONG")
        rows.append([_button(b) for b in row.buttons])
    if sum(len(r) for r in rows) > MAX_BUTTONS:
        raise RpcError(400, "REPLY_MARKUP_TOO_LONG")
    if len(json.dumps(rows, ensure_ascii=False).encode()) > MAX_MARKUP_BYTES:
        raise RpcError(400, "REPLY_MARKUP_TOO_LONG")
    return rows or None


def _button(button: object) -> dict:
    if not isinstance(button, types.KeyboardInlineButton) or not isinstance(
        button.type, types.InlineButtonTypeUrl
    ):
        raise RpcError(400, "BUTTON_TYPE_INVALID")
    if not button.text.strip():
        raise RpcError(400, "BUTTON_TEXT_INVALID")
    url = button.type.url
    if not _url_ok(url):
        raise RpcError(400, "BUTTON_URL_INVALID")
    return {"text": button.text, "url": url}


def _url_ok(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if any(c.isspace() for c in url):
        return False
    if parts.scheme in ("http", "https"):
        return bool(parts.hostname)
    return parts.scheme == "tg" and bool(parts.netloc or parts.path)


def render(rows: Rows | None) -> types.ReplyInlineMarkup | None:
    if not rows:
        return None
    return types.ReplyInlineMarkup(
        rows=[
            types.KeyboardInlineButtonRow(
                [
                    types.KeyboardInlineButton(b["text"], types.InlineButtonTypeUrl(b["url"]))
                    for b in row
                ]
            )
            for row in rows
        ]
    )
