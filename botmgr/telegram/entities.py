"""gateway.Entity (Bot-API type names) ⇄ Telethon's MessageEntity* TL classes.

Offsets and lengths are UTF-16 code units on both sides, so they pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from telethon.tl import types

from botmgr.telegram.gateway import Entity, MessageRejected

_Builder = Callable[[Entity], types.TypeMessageEntity]

_SIMPLE: dict[str, type] = {
    "bold": types.MessageEntityBold,
    "italic": types.MessageEntityItalic,
    "underline": types.MessageEntityUnderline,
    "strikethrough": types.MessageEntityStrike,
    "spoiler": types.MessageEntitySpoiler,
    "code": types.MessageEntityCode,
    "url": types.MessageEntityUrl,
    "email": types.MessageEntityEmail,
    "phone_number": types.MessageEntityPhone,
    "mention": types.MessageEntityMention,
    "hashtag": types.MessageEntityHashtag,
    "cashtag": types.MessageEntityCashtag,
    "bot_command": types.MessageEntityBotCommand,
    "bank_card": types.MessageEntityBankCard,
}


def _pre(e: Entity) -> types.TypeMessageEntity:
    return types.MessageEntityPre(e.offset, e.length, language=e.language or "")


def _text_link(e: Entity) -> types.TypeMessageEntity:
    if not e.url:
        raise MessageRejected("a link without an address")
    return types.MessageEntityTextUrl(e.offset, e.length, url=e.url)


def _blockquote(e: Entity) -> types.TypeMessageEntity:
    return types.MessageEntityBlockquote(e.offset, e.length)


def _expandable_blockquote(e: Entity) -> types.TypeMessageEntity:
    return types.MessageEntityBlockquote(e.offset, e.length, collapsed=True)


def _custom_emoji(e: Entity) -> types.TypeMessageEntity:
    try:
        document_id = int(e.custom_emoji_id or "")
    except ValueError:
        raise MessageRejected("a custom emoji without a valid id") from None
    return types.MessageEntityCustomEmoji(e.offset, e.length, document_id=document_id)


_BUILDERS: dict[str, _Builder] = {
    "pre": _pre,
    "text_link": _text_link,
    "blockquote": _blockquote,
    "expandable_blockquote": _expandable_blockquote,
    "custom_emoji": _custom_emoji,
}


def to_telethon(entities: Iterable[Entity]) -> list[types.TypeMessageEntity]:
    """Map entities for messages.sendMessage. An unknown type is refused rather than
    silently dropped: the caller would otherwise post different formatting than asked."""
    result: list[types.TypeMessageEntity] = []
    for e in entities:
        if e.offset < 0 or e.length <= 0:
            raise MessageRejected(f"entity {e.type} has invalid bounds")
        simple = _SIMPLE.get(e.type)
        if simple is not None:
            result.append(simple(e.offset, e.length))
            continue
        builder = _BUILDERS.get(e.type)
        if builder is None:
            raise MessageRejected(f"unsupported entity type {e.type!r}")
        result.append(builder(e))
    return result


_SIMPLE_BACK = {cls: name for name, cls in _SIMPLE.items()}


def from_telethon(entities: Iterable[types.TypeMessageEntity] | None) -> list[Entity]:
    """The reverse mapping (reading posted messages back, e.g. in tests and checks).
    Entity kinds a bot cannot send (mention by user id, dates …) are skipped."""
    result: list[Entity] = []
    for e in entities or ():
        name = _SIMPLE_BACK.get(type(e))
        if name is not None:
            result.append(Entity(name, e.offset, e.length))
        elif isinstance(e, types.MessageEntityPre):
            result.append(Entity("pre", e.offset, e.length, language=e.language or None))
        elif isinstance(e, types.MessageEntityTextUrl):
            result.append(Entity("text_link", e.offset, e.length, url=e.url))
        elif isinstance(e, types.MessageEntityBlockquote):
            kind = "expandable_blockquote" if e.collapsed else "blockquote"
            result.append(Entity(kind, e.offset, e.length))
        elif isinstance(e, types.MessageEntityCustomEmoji):
            result.append(
                Entity("custom_emoji", e.offset, e.length, custom_emoji_id=str(e.document_id))
            )
    return result
