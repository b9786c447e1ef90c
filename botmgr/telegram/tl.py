"""TL objects ⇄ the gateway's values, for the Telethon gateway: message entities, the
input channels a bot reaches channels with (the access hashes it learnt, in memory and
through ``BotMemory`` in the database), a participant's rights, the id of a sent message.

Entities: gateway.Entity (Bot-API type names) ⇄ Telethon's MessageEntity* classes;
offsets and lengths are UTF-16 code units on both sides, so they pass through unchanged.

Channels: Telegram asks clients to persist id + access_hash per account and reuse them
after a restart instead of resolving again (core.telegram.org/api/peers);
resolveUsername is the method it floods hardest (waits of hours are reported). Store
failures are logged, never raised: without a stored hash the bot only resolves once more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import cast

from telethon import errors, functions, types

from botmgr.telegram.clients import PooledClient
from botmgr.telegram.gateway import (
    BotAccount,
    BotMemory,
    ChannelInfo,
    ChannelUnresolvable,
    Entity,
    LookupFlood,
    MessageRejected,
    Rights,
)
from botmgr.telegram.rich import Buttons

log = logging.getLogger(__name__)


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


# ----------------------------------------------------------------- channels
Who = tuple[int, str]  # (database bot id, Telegram bot id from the token)


def who(bot: BotAccount) -> Who:
    # A bot token starts with the Telegram bot's id: a new token of the same bot keeps
    # the state, another bot under the same database id starts afresh.
    return bot.bot_id, bot.token.partition(":")[0]


def tg_bot_id(bot: BotAccount) -> int:
    prefix = bot.token.partition(":")[0]
    return int(prefix) if prefix.isdigit() else 0


class ChannelHashes:
    def __init__(self, memory: BotMemory | None) -> None:
        self._memory = memory
        self._hashes: dict[tuple[Who, int], int] = {}  # (bot, channel) → access hash
        self._loaded: set[Who] = set()  # bots whose stored hashes were read

    async def get(self, bot: BotAccount, tg_id: int) -> int | None:
        await self._load(bot)
        return self._hashes.get((who(bot), tg_id))

    async def _load(self, bot: BotAccount) -> None:
        """Once per bot per process: the hashes a previous process stored."""
        key = who(bot)
        if self._memory is None or key in self._loaded:
            return
        try:
            stored = await self._memory.channel_hashes(bot.bot_id, tg_bot_id(bot))
        except Exception as exc:  # asked again on the next call
            log.warning("bot %s: reading its channel hashes failed (%s)", bot.bot_id, exc)
            return
        for channel_id, access_hash in stored.items():
            self._hashes.setdefault((key, channel_id), access_hash)
        self._loaded.add(key)

    async def learn(self, bot: BotAccount, info: ChannelInfo) -> None:
        key = (who(bot), info.tg_id)
        if info.access_hash is None or self._hashes.get(key) == info.access_hash:
            return
        self._hashes[key] = info.access_hash
        if self._memory is None:
            return
        try:
            await self._memory.save_channel_hash(
                bot.bot_id, tg_bot_id(bot), info.tg_id, info.access_hash
            )
        except Exception as exc:
            log.warning("bot %s: storing a channel hash failed (%s)", bot.bot_id, exc)

    async def forget(self, bot: BotAccount, tg_id: int) -> None:
        """Telegram refused the hash (CHANNEL_INVALID): resolve the channel again."""
        self._hashes.pop((who(bot), tg_id), None)
        if self._memory is None:
            return
        try:
            await self._memory.forget_channel_hash(bot.bot_id, tg_id)
        except Exception as exc:
            log.warning("bot %s: dropping a channel hash failed (%s)", bot.bot_id, exc)


# ----------------------------------------------------------------- lookups
async def by_username(p: PooledClient, username: str) -> types.TypeChat | None:
    name = username.lstrip("@")
    try:
        resolved = await p.client(functions.contacts.ResolveUsernameRequest(name))
    except errors.FloodWaitError as exc:  # also Telethon's local refusal during a wait
        raise LookupFlood(max(1, exc.seconds)) from None
    if not isinstance(resolved.peer, types.PeerChannel):
        kind = "a user" if isinstance(resolved.peer, types.PeerUser) else "a group"
        raise ChannelUnresolvable(f"@{name} is {kind}, not a channel")
    return next((c for c in resolved.chats if c.id == resolved.peer.channel_id), None)


async def by_id(
    p: PooledClient, tg_id: int, access_hash: int | None, *, fallback: bool = True
) -> types.TypeChat | None:
    async def get(hash_: int) -> types.TypeChat | None:
        answer = await p.client(
            functions.channels.GetChannelsRequest([types.InputChannel(tg_id, hash_)])
        )
        return next((c for c in answer.chats if c.id == tg_id), None)

    if access_hash:
        try:
            return await get(access_hash)
        except errors.ChannelInvalidError:
            if not fallback:
                raise
            # another account's hash: a member may still ask with 0
    return await get(0)


# ----------------------------------------------------------------- answers
def rights_of(participant: types.TypeChannelParticipant) -> Rights:
    if isinstance(participant, types.ChannelParticipantCreator):
        return Rights(is_member=True, is_admin=True, can_post=True)
    if isinstance(participant, types.ChannelParticipantAdmin):
        can_post = bool(participant.admin_rights and participant.admin_rights.post_messages)
        return Rights(is_member=True, is_admin=True, can_post=can_post)
    if isinstance(participant, types.ChannelParticipantBanned | types.ChannelParticipantLeft):
        return Rights(is_member=False, is_admin=False, can_post=False)
    return Rights(is_member=True, is_admin=False, can_post=False)


def sent_message_id(answer: object, random_id: int) -> int | None:
    if isinstance(answer, types.UpdateShortSentMessage):
        return cast(int, answer.id)
    for update in getattr(answer, "updates", ()):
        if isinstance(update, types.UpdateMessageID) and update.random_id == random_id:
            return cast(int, update.id)
    for update in getattr(answer, "updates", ()):
        if isinstance(update, types.UpdateNewChannelMessage | types.UpdateNewMessage):
            return cast(int, update.message.id)
    return None


def sent_message_ids(answer: object, random_ids: Sequence[int]) -> list[int] | None:
    """The ids of an album's messages in item order (updateMessageID maps each item's
    random_id to its id); None when the answer does not name every one."""
    by_random = {
        u.random_id: u.id
        for u in getattr(answer, "updates", ())
        if isinstance(u, types.UpdateMessageID)
    }
    ids = [by_random.get(r) for r in random_ids]
    return None if None in ids else cast(list[int], ids)


def sent_messages(answer: object) -> list[types.Message]:
    """The messages an answer to a send carries (updateNewChannelMessage), in order."""
    return [
        u.message
        for u in getattr(answer, "updates", ())
        if isinstance(u, types.UpdateNewChannelMessage | types.UpdateNewMessage)
        and isinstance(u.message, types.Message)
    ]


# ----------------------------------------------------------------- buttons
def to_markup(buttons: Buttons) -> types.ReplyInlineMarkup | None:
    """Rows of URL buttons as a replyInlineMarkup (layer 229: keyboardInlineButton with
    inlineButtonTypeUrl, what Telethon's ``Button.url`` builds); None for no buttons."""
    if not buttons:
        return None
    return types.ReplyInlineMarkup(
        rows=[
            types.KeyboardInlineButtonRow(
                [types.KeyboardInlineButton(b.text, types.InlineButtonTypeUrl(b.url)) for b in row]
            )
            for row in buttons
        ]
    )
