"""Markdown → (text, entities): exact text and UTF-16 offsets, as Telegram counts them."""

from __future__ import annotations

import pytest

from botmgr.posts.markdown import MESSAGE_LIMIT, MessageTooLong, RenderedMessage, render
from botmgr.telegram.gateway import Entity


def test_bold_italic_cyrillic() -> None:
    assert render("**Привет**, _мир_!") == RenderedMessage(
        text="Привет, мир!",
        entities=[Entity("bold", 0, 6), Entity("italic", 8, 3)],
    )


def test_emoji_takes_two_utf16_units() -> None:
    rendered = render("😀 **жирный** [ссылка](https://example.com/a?b=1)")
    assert rendered.text == "😀 жирный ссылка"
    assert rendered.entities == [
        Entity("bold", 3, 6),
        Entity("text_link", 10, 6, url="https://example.com/a?b=1"),
    ]


def test_zwj_sequence_counts_every_code_unit() -> None:
    # 👨 ZWJ 👩 ZWJ 👧 = 2 + 1 + 2 + 1 + 2 units, then a space.
    rendered = render("👨\u200d👩\u200d👧 *x*")
    assert rendered.entities == [Entity("italic", 9, 1)]


def test_heading_is_bold_underlined_without_prefix() -> None:
    assert render("# Заголовок\n\nТекст") == RenderedMessage(
        text="Заголовок\n\nТекст",
        entities=[Entity("underline", 0, 9), Entity("bold", 0, 9)],
    )


def test_pre_with_language_and_inline_code_and_strike() -> None:
    assert render('```python\nprint("hi")\n```').entities == [
        Entity("pre", 0, 11, language="python")
    ]
    assert render("a `code` ~~old~~") == RenderedMessage(
        text="a code old",
        entities=[Entity("code", 2, 4), Entity("strikethrough", 7, 3)],
    )


def test_quote_and_lists() -> None:
    assert render("> цитата\n> вторая") == RenderedMessage(
        text="цитата\nвторая", entities=[Entity("blockquote", 0, 13)]
    )
    # The list's trailing newline is trimmed, as Telegram would.
    assert render("- one\n- two\n\n1. first\n2. **second**") == RenderedMessage(
        text="⦁ one\n⦁ two\n\n1. first\n2. second",
        entities=[Entity("bold", 25, 6)],
    )


def test_markdown_special_characters_need_no_escaping() -> None:
    rendered = render("Цена 5_000 руб. (скидка!) a.b-c")
    assert rendered.text == "Цена 5_000 руб. (скидка!) a.b-c"
    assert rendered.entities == []


@pytest.mark.parametrize(
    "source", ["", "   \n\n", "[](https://example.com)", "<div>\nhtml only\n</div>", "\ud800"]
)
def test_nothing_visible_is_refused(source: str) -> None:
    with pytest.raises(ValueError):
        render(source)


def test_limit_counts_utf16_units_not_code_points() -> None:
    render("я" * MESSAGE_LIMIT)  # 4096 BMP characters fit
    with pytest.raises(MessageTooLong) as caught:
        render("😀" * 2049)  # 2049 code points, 4098 units
    assert caught.value.length == 4098
    assert caught.value.limit == MESSAGE_LIMIT
    assert isinstance(caught.value, ValueError)


def test_limit_applies_after_formatting() -> None:
    # Markup characters do not count: 4096 letters wrapped in ** are fine.
    rendered = render("**" + "a" * MESSAGE_LIMIT + "**")
    assert rendered.entities == [Entity("bold", 0, MESSAGE_LIMIT)]


def test_nested_quotes_give_one_entity() -> None:
    assert render("> > > deep") == RenderedMessage(
        text="deep", entities=[Entity("blockquote", 0, 4)]
    )
