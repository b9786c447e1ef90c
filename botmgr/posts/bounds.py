"""What a post's Markdown may cost, checked before it is parsed.

The parser (pulldown-cmark, through pyromark) is fast, but telegramify-markdown's
converter indents every list item by its depth: ``"- " * n`` nests n lists on one line
and writes n²/… characters (40 KB of it held an event loop 11.8 s and 900 MB). So the
source is refused up front, in time linear in its size, when it is

- longer than ``max_bytes`` in UTF-8 (what a POST body carries, not what Python counts), or
- nested deeper than ``max_depth`` lists and block quotes.

The depth is *estimated* by a scan of each line's container prefix, a simplified
CommonMark block pass: the open containers are matched (a list item by its content
indentation, a quote by its ``>``), then the markers that open new ones are counted.
It errs towards counting: a line that matches fewer containers and opens none is taken
for a lazy continuation and keeps them open, so indentation cannot hide depth that
CommonMark would see. Thematic breaks (``- - -``) and indented code open nothing; code
blocks are *not* skipped: a misread fence (inside an HTML block, say) would hide the
lines after it, and code rarely starts 17 markers deep. The scan stops at
``max_depth + 1``, so it never holds more than that many containers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_MAX_BYTES = 16 * 1024
DEFAULT_MAX_DEPTH = 16

_LINE_BREAK = re.compile(r"\r\n?")  # CommonMark's other line endings
_ORDERED = re.compile(r"[0-9]{1,9}[.)]")
_SPACES = re.compile(" *")
_MARKER_CHARS = frozenset(">-+*0123456789")
_QUOTE = -1  # a stack entry that is a block quote; a list item's entry is its width


@dataclass(frozen=True, slots=True)
class MarkdownLimits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_depth: int = DEFAULT_MAX_DEPTH


class MarkdownTooLarge(ValueError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(size, limit)
        self.size, self.limit = size, limit

    def __str__(self) -> str:
        return f"Markdown is {self.size:,} bytes (UTF-8), over the size limit of {self.limit:,}"


class MarkdownTooDeep(ValueError):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit

    def __str__(self) -> str:
        return f"lists and block quotes nest deeper than the nesting limit of {self.limit} levels"


def bounded(markdown: str, limits: MarkdownLimits) -> str:
    """``markdown`` with ``\\n`` line endings, or MarkdownTooLarge / MarkdownTooDeep.

    The size is checked first, so the depth scan only ever reads a bounded source. Line
    endings are made one, as the scan reads them: pulldown-cmark takes a lone ``\\r``
    for a line ending in some blocks and not in others (indented code), and what it
    then nests is not what a scan of lines would see. A post has no use for them.
    """
    size = utf8_size(markdown)
    if size > limits.max_bytes:
        raise MarkdownTooLarge(size, limits.max_bytes)
    if "\r" in markdown:
        markdown = _LINE_BREAK.sub("\n", markdown)
    if nesting_depth(markdown, limits.max_depth) > limits.max_depth:
        raise MarkdownTooDeep(limits.max_depth)
    return markdown


def utf8_size(text: str) -> int:
    """What ``text`` weighs in a UTF-8 request body (encoding 100,000 characters takes
    ~0.1 ms; the API refuses longer messages before this is called)."""
    # surrogatepass: a lone surrogate is counted here and refused by the renderer.
    return len(text.encode("utf-8", "surrogatepass"))


def nesting_depth(markdown: str, limit: int) -> int:
    """The deepest nesting of lists and block quotes in ``markdown`` (``\\n`` line
    endings), counted up to ``limit + 1``."""
    stack: list[int] = []  # open containers, outermost first
    deepest = 0
    for raw in markdown.split("\n"):
        first = raw.lstrip(" \t")[:1]
        if not first:  # a blank line closes the quotes, not the list items
            if _QUOTE in stack:
                del stack[stack.index(_QUOTE) :]
            continue
        if first not in _MARKER_CHARS:
            continue  # it opens nothing and closes nothing: continued, or lazy
        # CommonMark's tab stops are every 4 columns of the line, as expandtabs' are.
        tabbed = "\t" in raw
        line = raw.expandtabs(4) if tabbed else raw
        matched, pos = _match_open(line, stack, tabbed)
        if not line[pos:].strip(" "):
            del stack[matched:]  # ">" alone: the quotes it does not continue close
            continue
        opened = _open_new(line, pos, limit + 1 - matched)
        if matched < len(stack) and not opened:
            continue  # a lazy continuation: CommonMark keeps the containers open
        del stack[matched:]
        stack += opened
        deepest = max(deepest, len(stack))
        if deepest > limit:
            break
    return deepest


def _indent(line: str, pos: int) -> int:
    found = _SPACES.match(line, pos)
    return found.end() - pos if found else 0


def _match_open(line: str, stack: list[int], tabbed: bool) -> tuple[int, int]:
    """How many open containers ``line`` continues, and where its content starts.

    ``tabbed``: pulldown-cmark lets a tab before ``>`` continue an open quote (CommonMark
    would see 4 columns of indentation); a line with tabs is read its way too.
    """
    pos = 0
    blank = not line.strip(" ")
    for matched, entry in enumerate(stack):
        indent = _indent(line, pos)
        if entry == _QUOTE:
            if (indent > 3 and not tabbed) or line[pos + indent : pos + indent + 1] != ">":
                return matched, pos
            pos += indent + 1
            pos += line[pos : pos + 1] == " "
        elif blank:
            pos = len(line)  # list items go on over blank lines
        elif indent >= entry:
            pos += entry
        else:
            return matched, pos
    return len(stack), pos


def _open_new(line: str, pos: int, room: int) -> list[int]:
    """The containers that ``line`` opens from ``pos``: at most ``room`` of them, enough
    to tell that the limit is passed."""
    opened: list[int] = []
    while len(opened) < room:
        indent = _indent(line, pos)
        if indent > 3:  # indented code, or a paragraph's continuation: no markers there
            break
        at = pos + indent
        char = line[at : at + 1]
        if char == ">":
            opened.append(_QUOTE)
            pos = at + 1 + (line[at + 1 : at + 2] == " ")
            continue
        if char in ("-", "+", "*"):
            width = 1
            if _thematic_break(line, at, char):
                break
        elif found := _ORDERED.match(line, at):
            width = len(found[0])
        else:
            break
        after = at + width
        if after < len(line) and line[after] != " ":
            break  # "-x", "1.5": text, not a list item
        spaces = _indent(line, after)
        # CommonMark: 1–4 spaces belong to the marker; with more (code), none, or nothing
        # after them (the item starts blank), one does.
        content = spaces if 1 <= spaces <= 4 and after + spaces < len(line) else 1
        opened.append(indent + width + content)
        pos = after + min(spaces, content)
    return opened


def _thematic_break(line: str, at: int, char: str) -> bool:
    """Whether ``line`` from ``at`` is a rule (``- - -``, ``***``), not a list item."""
    tail = line[at:]
    return char != "+" and not tail.strip(char + " ") and tail.count(char) >= 3
