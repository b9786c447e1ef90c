"""Ordinary Markdown → Telegram plain text + message entities.

Telegram is sent the plain text and a list of entities (never a MarkdownV2 string), so
nothing the author wrote has to be escaped for Telegram. The conversion itself is
telegramify-markdown's (pyromark, i.e. pulldown-cmark, underneath); this module fixes
its options, bounds what it is given (``bounds.py``) and enforces Telegram's limit.

Two of the converter's costs grow with the square of the input, so ``render`` runs its
event walker with two changes, and nothing else of it differs (tests/unit compares the
two on a corpus):

- its text buffer finds the trailing newlines by walking back over every part written,
  which after each of 2,000 empty code blocks is every part: ``_Buffer`` keeps the count;
- a list item is indented by its depth, so depth d costs d² characters: the source's
  depth is refused before parsing, and the walker refuses it again, exactly as the
  parser nests, should the estimate of ``bounds.py`` ever fall short.

``render`` is synchronous and CPU-bound: the service calls it through
``renderer.render_bounded``, in another process under a time budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from telegramify_markdown import RenderConfig, utf16_len
from telegramify_markdown import converter as _converter

from botmgr.posts.bounds import MarkdownLimits, MarkdownTooDeep, bounded
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
DEFAULT_LIMITS = MarkdownLimits()


@dataclass(frozen=True)
class RenderedMessage:
    text: str
    entities: list[Entity]


class MessageTooLong(ValueError):
    """The text is longer than Telegram accepts in one message (``at_least``: the
    length is a lower bound, found before the whole text was made)."""

    def __init__(self, length: int, limit: int = MESSAGE_LIMIT, at_least: bool = False) -> None:
        at = "at least " if at_least else ""
        super().__init__(
            f"message is {at}{length} characters long after formatting; Telegram accepts {limit}"
        )
        self.length = length
        self.limit = limit
        self.at_least = at_least

    def __reduce__(self) -> tuple[type[MessageTooLong], tuple[int, int, bool]]:
        # It crosses from the render process as it was raised there.
        return MessageTooLong, (self.length, self.limit, self.at_least)


def render(markdown: str, limits: MarkdownLimits = DEFAULT_LIMITS) -> RenderedMessage:
    """Convert ``markdown``; raise ValueError if nothing visible is left, MessageTooLong
    if the result exceeds Telegram's limit (counted as Telegram counts: UTF-16 units),
    MarkdownTooLarge / MarkdownTooDeep if the source is past ``limits``."""
    markdown = bounded(markdown, limits)
    try:
        text, entities = _convert(markdown, limits.max_depth)
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


def _convert(markdown: str, max_depth: int) -> tuple[str, list[Any]]:
    """``telegramify_markdown.convert`` (latex_escape off: a post is prose, and backslash
    sequences must stay as written) with the walker of this module."""
    source, events = _converter._parse(markdown, _converter.STANDARD_OPTIONS, latex_escape=False)
    text, entities, _segments = _Walker(_CONFIG, source, max_depth).walk(events)
    return text, entities


class _Buffer(_converter._TextBuffer):
    """The converter's text buffer, with its trailing newlines counted as it is written
    (its own count walks back over every part written: quadratic)."""

    __slots__ = ("_trailing",)

    def __init__(self) -> None:
        super().__init__()
        self._trailing: list[int] = []  # trailing newlines after each part

    def write(self, text: str) -> None:
        super().write(text)
        before = self._trailing[-1] if self._trailing else 0
        kept = text.rstrip("\n")
        newlines = len(text) - len(kept)
        self._trailing.append(newlines if kept else before + newlines)

    def trailing_newline_count(self) -> int:
        return self._trailing[-1] if self._trailing else 0

    def pop_last(self) -> str:
        part: str = super().pop_last()
        if self._trailing:
            self._trailing.pop()
        return part


class _Walker(_converter.EventWalker):
    def __init__(self, config: RenderConfig, source: str, max_depth: int) -> None:
        super().__init__(config, source)
        self._buf = _Buffer()
        self._max_depth = max_depth

    def _on_start_list(self, start_number: int | None, source_start: int | None = None) -> None:
        self._check_depth()
        super()._on_start_list(start_number, source_start)

    def _on_start_blockquote(self, source_start: int | None = None) -> None:
        self._check_depth()
        super()._on_start_blockquote(source_start)

    def _format_table(self, rows: list[list[str]]) -> str:
        # Every line of the table is padded to the widest cells: a wide header over
        # thousands of short rows is megabytes of spaces. All but the last line survive
        # the final rstrip, so past the limit the table alone is too long.
        if len(rows) > 1:
            columns = max(len(row) for row in rows)
            widths = [
                max(len(row[i]) if i < len(row) else 0 for row in rows) for i in range(columns)
            ]
            line = sum(widths) + 3 * (columns - 1) + 1  # with its newline
            kept = len(rows) * line  # the header's separator line, not the last
            if kept > MESSAGE_LIMIT:
                raise MessageTooLong(kept, at_least=True)
        table: str = super()._format_table(rows)
        return table

    def _check_depth(self) -> None:
        # The container about to open would be one deeper than those open now.
        if len(self._list_stack) + len(self._blockquote_scopes) >= self._max_depth:
            raise MarkdownTooDeep(self._max_depth)
