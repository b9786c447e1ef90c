"""What Telegram will show: a post's text and entities — as the service renders them for
Telegram (botmgr/posts/drafts.check_text, the same render and limits as POST /messages)
— turned into HTML for the composer's preview and the post pages.

The HTML only approximates a Telegram client (fonts, spoilers, link previews are the
client's); every character of the text is escaped, and links keep only the schemes a
button may open too (http, https, tg) plus mailto: anything else is shown as text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from markupsafe import Markup, escape

from botmgr.telegram.gateway import Entity

LINK_SCHEMES = ("http", "https", "tg", "mailto")

# Entity type → (opening tag, closing tag); text_link and url are built with their href.
_TAGS: dict[str, tuple[str, str]] = {
    "bold": ("<strong>", "</strong>"),
    "italic": ("<em>", "</em>"),
    "underline": ("<u>", "</u>"),
    "strikethrough": ("<s>", "</s>"),
    "spoiler": ('<span class="tg-spoiler">', "</span>"),
    "code": ('<code class="tg-code">', "</code>"),
    "pre": ('<pre class="tg-pre"><code>', "</code></pre>"),
    "blockquote": ('<blockquote class="tg-quote">', "</blockquote>"),
    "expandable_blockquote": ('<blockquote class="tg-quote tg-expandable">', "</blockquote>"),
}


def safe_href(url: str | None) -> str | None:
    if not url:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in LINK_SCHEMES else None


def _tags(entity: Entity, covered: str) -> tuple[str, str]:
    """The opening and closing tag of ``entity`` (``covered``: the text it spans)."""
    if entity.type in ("text_link", "url"):
        href = safe_href(entity.url if entity.type == "text_link" else covered)
        if href is None:
            return '<span class="tg-link">', "</span>"
        anchor = '<a class="tg-link" href="{}" target="_blank" rel="noopener noreferrer">'
        return str(Markup(anchor).format(href)), "</a>"
    if entity.type == "pre" and entity.language:
        opening = Markup('<pre class="tg-pre" data-language="{}"><code>').format(entity.language)
        return str(opening), "</code></pre>"
    return _TAGS.get(entity.type, ("<span>", "</span>"))


def _indexes(text: str) -> list[int]:
    """For each UTF-16 offset (Telegram counts in UTF-16 units), the index in ``text``;
    the second half of a surrogate pair maps to the character's index + 1."""
    where: list[int] = []
    for i, char in enumerate(text):
        where.append(i)
        if ord(char) > 0xFFFF:
            where.append(i + 1)
    where.append(len(text))
    return where


@dataclass(frozen=True, slots=True)
class _Span:
    start: int
    end: int
    tags: tuple[str, str]


def entities_html(text: str, entities: Sequence[Entity]) -> Markup:
    """``text`` with its entities as HTML tags, properly nested (a span that crosses
    another is closed and opened again around it)."""
    where = _indexes(text)
    last = len(where) - 1
    spans: list[_Span] = []
    for e in entities:
        start, end = where[min(e.offset, last)], where[min(e.offset + e.length, last)]
        if end > start:
            spans.append(_Span(start, end, _tags(e, text[start:end])))
    spans.sort(key=lambda s: (s.start, -s.end))
    cuts = sorted({0, len(text), *(s.start for s in spans), *(s.end for s in spans)})
    out: list[str] = []
    stack: list[_Span] = []
    pending = list(reversed(spans))
    position = 0
    for cut in cuts:
        out.append(str(escape(text[position:cut])))
        position = cut
        if any(s.end == cut for s in stack):  # close down to the deepest one ending here
            reopen: list[_Span] = []
            while any(s.end == cut for s in stack):
                span = stack.pop()
                out.append(span.tags[1])
                if span.end != cut:
                    reopen.append(span)
            for span in reversed(reopen):
                out.append(span.tags[0])
                stack.append(span)
        while pending and pending[-1].start == cut:
            span = pending.pop()
            out.append(span.tags[0])
            stack.append(span)
    while stack:  # entities past the end (never, once rendered): closed all the same
        out.append(stack.pop().tags[1])
    return Markup("".join(out))


def first_link(text: str, entities: Sequence[Entity]) -> str | None:
    """The link Telegram would preview (the first one), or None."""
    where = _indexes(text)
    last = len(where) - 1
    for entity in sorted(entities, key=lambda e: e.offset):
        if entity.type == "text_link" and safe_href(entity.url):
            return entity.url
        if entity.type == "url":
            covered = text[
                where[min(entity.offset, last)] : where[min(entity.offset + entity.length, last)]
            ]
            if safe_href(covered):
                return covered
    for word in text.split():
        if word.startswith(("http://", "https://")) and safe_href(word):
            return word
    return None


def link_host(url: str) -> str:
    try:
        return urlsplit(url).hostname or url
    except ValueError:
        return url
