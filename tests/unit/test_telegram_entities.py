"""gateway.Entity ⇄ Telethon TL entities, checked through the TL wire format."""

from __future__ import annotations

import pytest
from telethon.extensions import BinaryReader
from telethon.tl import types

from botmgr.posts.markdown import render
from botmgr.telegram.gateway import Entity, MessageRejected
from botmgr.telegram.tl import from_telethon, to_telethon


def roundtrip_wire(entities: list[types.TypeMessageEntity]) -> list[types.TypeMessageEntity]:
    # Serialise as Telethon would send them and parse back: proves the objects are
    # complete (e.g. MessageEntityPre needs a language string, never None).
    out = []
    for e in entities:
        with BinaryReader(bytes(e)) as reader:
            out.append(reader.tgread_object())
    return out


def test_every_markdown_entity_maps() -> None:
    rendered = render(
        "# H\n\n**b** _i_ ~~s~~ `c` [l](https://e.org) ||sp||\n\n"
        "```py\nx = 1\n```\n\n```\nplain\n```\n\n> q"
    )
    tl = roundtrip_wire(to_telethon(rendered.entities))
    assert [type(e) for e in tl] == [
        types.MessageEntityUnderline,
        types.MessageEntityBold,
        types.MessageEntityBold,
        types.MessageEntityItalic,
        types.MessageEntityStrike,
        types.MessageEntityCode,
        types.MessageEntityTextUrl,
        types.MessageEntitySpoiler,
        types.MessageEntityPre,
        types.MessageEntityPre,
        types.MessageEntityBlockquote,
    ]
    assert tl[6].url == "https://e.org"
    assert (tl[8].language, tl[9].language) == ("py", "")
    assert from_telethon(tl) == rendered.entities


def test_offsets_pass_through_in_utf16_units() -> None:
    rendered = render("😀😀 **x**")
    (bold,) = to_telethon(rendered.entities)
    assert (bold.offset, bold.length) == (5, 1)


def test_expandable_quote_and_custom_emoji() -> None:
    quote, emoji = to_telethon(
        [
            Entity("expandable_blockquote", 0, 300),
            Entity("custom_emoji", 0, 2, custom_emoji_id="5368324170671202286"),
        ]
    )
    assert isinstance(quote, types.MessageEntityBlockquote) and quote.collapsed
    assert isinstance(emoji, types.MessageEntityCustomEmoji)
    assert emoji.document_id == 5368324170671202286
    assert from_telethon([quote, emoji])[0].type == "expandable_blockquote"


def test_bot_api_auto_entities() -> None:
    kinds = ["url", "email", "mention", "hashtag", "cashtag", "bot_command", "phone_number"]
    tl = to_telethon([Entity(kind, 0, 3) for kind in kinds])
    assert [e.offset for e in tl] == [0] * len(kinds)
    assert [e.type for e in from_telethon(tl)] == kinds


@pytest.mark.parametrize(
    "entity",
    [
        Entity("text_mention", 0, 1),  # needs a user: not something a post can carry
        Entity("text_link", 0, 1),  # no url
        Entity("custom_emoji", 0, 1, custom_emoji_id="abc"),
        Entity("bold", -1, 2),
        Entity("bold", 0, 0),
    ],
)
def test_unusable_entities_are_refused(entity: Entity) -> None:
    with pytest.raises(MessageRejected):
        to_telethon([entity])
