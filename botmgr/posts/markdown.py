"""Ordinary Markdown → Telegram plain text + message entities.

Telegram is sent the plain text and a list of entities (never a MarkdownV2 string), so
nothing the author wrote has to be escaped for Telegram. The conversion itself is
telegramify-markdown's; this module fixes its options and enforces Telegram's limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import telegramify_markdown
from telegramify_markdown import RenderConfig, utf16_len

from botmgr.telegram.gateway import Entity

#: Telegram's limit for a text message, in UTF-16 code units after parsing.
MESSAGE_LIMIT = 4096


def _config() -> RenderConfig:
    # An isolated config: the library's global one is shared mutable state.
    config = RenderConfig.isolated()
    symbols = config.markdown_symbol
    # Headings are already bold (+ underline); an emoji prefix per level would put
    # characters into the post the author never wrote.
    for level in range(1, 7):
        setattr(symbols, f"heading_level_{level}", "")
    return config


_CONFIG = _config()


@dataclass(frozen=True)
class RenderedMessage:
    text: str
    entities: list[Entity]


class MessageTooLong(ValueError):
    """The text is longer than Telegram accepts in one message."""

    def __init__(self, length: int, limit: int = MESSAGE_LIMIT) -> None:
        super().__init__(
            f"message is {length} characters long after formatting; Telegram accepts {limit}"
        )
        self.length = length
        self.limit = limit


def render(markdown: str) -> RenderedMessage:
    """Convert ``markdown``; raise ValueError if nothing visible is left, MessageTooLong
    if the result exceeds Telegram's limit (counted as Telegram counts: UTF-16 units)."""
    try:
        # latex_escape off: a post is prose, and backslash sequences must stay as written.
        text, entities = telegramify_markdown.convert(markdown, latex_escape=False, config=_CONFIG)
    except UnicodeError:  # lone surrogates (e.g. "\ud800" in JSON) cannot be sent at all
        raise ValueError("message contains invalid characters") from None
    # Telegram trims trailing whitespace itself (lists end with a newline here); doing it
    # first keeps every entity inside the text that is actually stored.
    text = text.rstrip()
    if not text:
        raise ValueError("message is empty after formatting")
    length = utf16_len(text)
    if length > MESSAGE_LIMIT:
        raise MessageTooLong(length)
    result: list[Entity] = []
    seen: set[Entity] = set()
    for e in entities:
        end = min(e.offset + e.length, length)
        entity = Entity(
            type=e.type,
            offset=e.offset,
            length=end - e.offset,
            url=e.url,
            language=e.language,
            custom_emoji_id=e.custom_emoji_id,
        )
        # Nested quotes ("> > x") come out as identical entities; Telegram wants one.
        if entity.length > 0 and entity not in seen:
            seen.add(entity)
            result.append(entity)
    return RenderedMessage(text=text, entities=result)
