"""How a bot reaches a channel: the two lookups (by username, by id) and the channel
access hashes a bot has learnt, in memory and (through ``BotMemory``) in
the database, so a new process reaches known channels without contacts.resolveUsername.

Telegram asks clients to persist id + access_hash per account and reuse them after a
restart instead of resolving again (core.telegram.org/api/peers); resolveUsername is the
method it floods hardest (waits of hours are reported). Store failures are logged, never
raised: without a stored hash the bot only resolves once more.
"""

from __future__ import annotations

import logging

from telethon import errors, functions, types

from botmgr.telegram.clients import PooledClient
from botmgr.telegram.gateway import (
    BotAccount,
    BotMemory,
    ChannelInfo,
    ChannelUnresolvable,
    LookupFlood,
)

log = logging.getLogger(__name__)

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
