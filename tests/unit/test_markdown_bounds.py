"""The bounds of a post's Markdown: each limit refuses with its message, what is just
under a limit renders, and the inputs that used to cost seconds or gigabytes are now
refused up front or render as the converter would (outcomes, not timings: the timings
are bench/hostile.py's)."""

from __future__ import annotations

import random
from collections.abc import Callable

import pyromark
import pytest
import telegramify_markdown
from telegramify_markdown.converter import STANDARD_OPTIONS, _TextBuffer

from botmgr.posts.bounds import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DEPTH,
    MarkdownLimits,
    MarkdownTooDeep,
    MarkdownTooLarge,
    nesting_depth,
)
from botmgr.posts.markdown import _CONFIG, MessageTooLong, _Buffer, _convert, render

KIB = 1024


def parsed_depth(markdown: str) -> int:
    """How deep pulldown-cmark itself nests list items and block quotes."""
    depth = deepest = 0
    for event in pyromark.events(markdown, options=STANDARD_OPTIONS):
        if not isinstance(event, dict):
            continue
        for key, step in (("Start", 1), ("End", -1)):
            tag = event.get(key)
            if tag == "Item" or (isinstance(tag, dict) and "BlockQuote" in tag):
                depth += step
                deepest = max(deepest, depth)
    return deepest


def filled(unit: str, size: int) -> str:
    """``unit`` repeated to ``size`` UTF-8 bytes (ASCII units)."""
    return (unit * (size // len(unit) + 1))[:size]


# -- the size limit ---------------------------------------------------------------------


def test_size_limit_counts_utf8_bytes() -> None:
    link = "[x](https://example.com/"
    fits = link + "a" * (DEFAULT_MAX_BYTES - len(link) - 1) + ")"
    assert render(fits).text == "x"
    with pytest.raises(MarkdownTooLarge) as caught:
        render(fits + "!")
    assert str(caught.value) == (
        f"Markdown is {DEFAULT_MAX_BYTES + 1:,} bytes (UTF-8), over the size limit of "
        f"{DEFAULT_MAX_BYTES:,}"
    )
    # 8,193 Cyrillic letters are 16,386 bytes: refused, though fewer characters.
    with pytest.raises(MarkdownTooLarge):
        render("я" * (DEFAULT_MAX_BYTES // 2 + 1))


def test_size_limit_comes_from_the_limits() -> None:
    with pytest.raises(MarkdownTooLarge) as caught:
        render("**hello**", MarkdownLimits(max_bytes=8))
    assert caught.value.limit == 8 and caught.value.size == 9


# -- the nesting limit ------------------------------------------------------------------


def staircase(levels: int) -> str:
    return "".join("  " * level + "- item\n" for level in range(levels))


@pytest.mark.parametrize(
    "nest",
    [
        lambda n: "- " * n + "x",  # lists on one line
        lambda n: "1. " * n + "x",
        lambda n: "> " * n + "x",  # quotes
        lambda n: "> - " * (n // 2) + "x",  # both, alternating
        staircase,  # lists by indentation
        lambda n: "- a\n" + "  " + "- " * (n - 1) + "x",  # indentation, then markers
        lambda n: "\t".join(["-"] * n) + " x",  # tabs between markers
    ],
    ids=["dashes", "ordered", "quotes", "mixed", "indented", "continued", "tabs"],
)
def test_depth_limit_each_way_of_nesting(nest: Callable[[int], str]) -> None:
    at_limit, past = nest(DEFAULT_MAX_DEPTH), nest(DEFAULT_MAX_DEPTH + 2)
    assert parsed_depth(at_limit) <= DEFAULT_MAX_DEPTH < parsed_depth(past)
    assert render(at_limit).text
    with pytest.raises(MarkdownTooDeep) as caught:
        render(past)
    assert str(caught.value) == (
        f"lists and block quotes nest deeper than the nesting limit of {DEFAULT_MAX_DEPTH} levels"
    )


def test_depth_limit_comes_from_the_limits() -> None:
    assert render("- - x", MarkdownLimits(max_depth=2)).text.endswith("x")
    with pytest.raises(MarkdownTooDeep):
        render("- - - x", MarkdownLimits(max_depth=2))


@pytest.mark.parametrize(
    "markdown",
    [
        "- - -\n" * 20,  # thematic breaks, not lists
        "* * * * * * * * * * * * * * * * * * * *",
        "```\n" + "".join("    " * i + "if x:\n" for i in range(40)) + "```",  # deep code
        " " * 60 + "- signed, Bob",  # indented code
        "text\n" + "\n".join(" " * (2 * i) + "-x" for i in range(30)),  # not markers
    ],
    ids=["rules", "star-rule", "code", "indented", "dashes-in-words"],
)
def test_what_does_not_nest_is_not_counted(markdown: str) -> None:
    assert nesting_depth(markdown, DEFAULT_MAX_DEPTH) == parsed_depth(markdown)
    render(markdown)


def test_the_estimate_never_falls_short_of_the_parser() -> None:
    # Random sequences of container syntax: pulldown-cmark's depth is a lower bound of
    # the scan's, so what the parser would nest past the limit is refused before it.
    pieces = ["- ", "* ", "+ ", "1. ", "2) ", "> ", ">", " ", "  ", "    ", "\t", "\n"]
    pieces += ["\n\n", "x", "-", "```", "~~~", "<pre>", "</pre>", "---", "* * *", "#", "-\t"]
    rng = random.Random(13)
    for _ in range(3000):
        markdown = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 60)))
        assert nesting_depth(markdown, 1000) >= parsed_depth(markdown), repr(markdown)


def test_lone_carriage_returns_are_line_endings() -> None:
    # pulldown-cmark keeps a lone "\r" inside indented code, and nests what follows it
    # as no scan of lines would; the renderer hands it "\n" instead.
    raw = "-     *\r>\n\t" + "1. " * 20 + "x"
    normal = raw.replace("\r", "\n")
    assert parsed_depth(raw) > DEFAULT_MAX_DEPTH >= parsed_depth(normal)
    assert render(raw) == render(normal)
    assert render("a\rb\r\nc").text == render("a\nb\nc").text


def test_the_walker_refuses_what_the_scan_would_miss() -> None:
    with pytest.raises(MarkdownTooDeep):
        _convert("> - > x", max_depth=2)
    text, _entities = _convert("> - x", max_depth=2)
    assert text.strip().endswith("x")


# -- the converter's quadratic costs ----------------------------------------------------


def test_the_buffer_counts_trailing_newlines_as_the_converter_does() -> None:
    rng = random.Random(7)
    for _ in range(300):
        ours, theirs = _Buffer(), _TextBuffer()
        for _ in range(rng.randint(0, 30)):
            if rng.random() < 0.1:
                assert ours.pop_last() == theirs.pop_last()
            else:
                part = rng.choice(["", "\n", "\n\n", "a", "a\n", "\na", "b\n\n"])
                ours.write(part)
                theirs.write(part)
            assert ours.trailing_newline_count() == theirs.trailing_newline_count()
        assert ours.get_text() == theirs.get_text()


def test_the_walker_converts_as_the_library() -> None:
    pieces = ["- ", "* ", "1. ", "> ", "\n", "\n\n", "x", "**b**", "_i_", "`c`"]
    pieces += ["```\ncode\n```\n", "$$\n$$\n", "# h\n", "|a|b|\n|-|-|\n|1|2|\n", "[l](u)"]
    pieces += ["![i](u)", "~~s~~", "||sp||", "- [ ] t\n", "    ind\n", "  ", "\t", "<b>"]
    pieces += ["---\n", "$1$2", "~a~"]
    rng = random.Random(11)
    for _ in range(1500):
        markdown = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 25)))
        expected = telegramify_markdown.convert(markdown, latex_escape=False, config=_CONFIG)
        assert _convert(markdown, 1000) == expected, repr(markdown)


# -- hostile inputs ---------------------------------------------------------------------

TOO_DEEP = [
    "- " * 20000 + "x",  # the 40 KB body of the issue, under the size limit's worth
    filled("- ", 16 * KIB - 1) + "x",
    filled("> ", 16 * KIB - 1) + "x",
    filled("1. ", 16 * KIB - 1) + "x",
    filled("- 1. > ", 16 * KIB - 1) + "x",
]


@pytest.mark.parametrize("markdown", TOO_DEEP, ids=lambda m: f"{m[:6]!r}x{len(m)}")
def test_deep_nesting_is_refused(markdown: str) -> None:
    limits = MarkdownLimits(max_bytes=64 * KIB)
    with pytest.raises(MarkdownTooDeep):
        render(markdown, limits)


HOSTILE = {
    "stars": "*" * (16 * KIB),
    "emphasis": filled("_a", 16 * KIB),
    "emphasis-star": filled("*a", 16 * KIB),
    "nested-emphasis": filled("*a **b ***c ", 16 * KIB),
    "links": filled("[a](b)", 16 * KIB),
    "brackets": "[" * (16 * KIB),
    "open-links": filled("[a](", 16 * KIB),
    "nested-brackets": "[" * 3000 + "a" + "](b)" * 3000,
    "images": filled("![a](b)", 16 * KIB),
    "backticks": "`" * (16 * KIB),
    "code-spans": filled("`a``", 16 * KIB),
    "html": filled("<a ", 16 * KIB),
    "html-tags": filled("<b>", 16 * KIB),
    "fences": filled("```\n", 16 * KIB),
    "empty-math": filled("$$$$\n\n", 16 * KIB),
    "dollars": filled("$1$2", 16 * KIB),
    "tildes": filled("~a", 16 * KIB),
    "spoilers": filled("||a", 16 * KIB),
    "headings": filled("# a\n", 16 * KIB),
    "empty-headings": filled("#\n", 16 * KIB),
    "empty-quotes": filled(">\n\n", 16 * KIB),
    "wide-table": "|" + "a|" * 4000 + "\n|" + "-|" * 4000 + "\n",
    "padded-table": "|" + "a" * 8000 + "|\n|-|\n" + "x\n" * 4000,
    "entities": filled("&amp;", 16 * KIB),
    "newlines": "\n" * (16 * KIB),
}


@pytest.mark.parametrize("markdown", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_inputs_are_answered(markdown: str) -> None:
    # Either rendered within Telegram's limit, or refused for a reason the author can
    # act on; never a crash, never a result past the limit.
    try:
        rendered = render(markdown)
    except (MessageTooLong, MarkdownTooDeep, MarkdownTooLarge):
        return
    except ValueError as exc:
        assert str(exc) == "message is empty after formatting"
        return
    assert rendered.text
    assert telegramify_markdown.utf16_len(rendered.text) <= 4096


@pytest.mark.parametrize("markdown", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_inputs_at_64_kib_are_refused_by_size(markdown: str) -> None:
    big = (markdown * 4)[: 64 * KIB]
    with pytest.raises(MarkdownTooLarge):
        render(big)


def test_a_wide_table_over_many_rows_is_refused_before_it_is_padded() -> None:
    with pytest.raises(MessageTooLong) as caught:
        render(HOSTILE["padded-table"])
    assert caught.value.at_least
    assert str(caught.value).startswith("message is at least ")
