"""The Gateway over Telethon (MTProto): what the service knows as "Telegram".

Decisions worth knowing:
- Clients are pooled per bot (pool.py, capped); ``login()`` uses a throw-away client
  and disconnects it: the session it returns is stored by the caller, and the worker's
  pool connects with that session later without logging in again.
- Every call runs under one deadline (``call_timeout``): Telethon has no request timeout
  of its own, and a lost answer must become TelegramUnavailable, never a hang.
- A refused session (401) gets exactly one token login and one retry of the call.
- Channel access hashes are per bot; the gateway caches what it learns per (bot, channel).
  "Bot" here (and for the update-stream state below) is the database id together with the
  Telegram bot id from the token, never the database id alone: ids restart in a new database.
  Otherwise it resolves the ref first (username; or getChannels with the ref's hash, then
  with 0), and a hash stored by a previous bot or a username that moved to another
  channel cannot mislead it.
- What it learns is also stored through ``BotMemory`` (tl.py): a restarted worker
  resolves no known channel; CHANNEL_INVALID to a stored hash resolves once more. A
  resolve flood (LookupFlood) thus never stalls calls to channels the bot knows.
- A token login Telegram answers with FLOOD_WAIT is remembered ("no login before T",
  ``logins.LoginFloods``, stored through ``BotMemory``): until then the gateway raises
  FloodWait with the remaining seconds without asking Telegram.
- ``admin_channels`` answers every channel the bot is admin of *as seen in its update
  stream* (promotions minus later demotions), not only the news since the last call:
  several bindings may ask in turn and each must see the channel. The stream position
  and that set are kept in memory per bot (StringSession stores neither); the first call
  in a process re-reads the qts sequence from 0, so promotions made while the service
  was down are found again — but only what Telegram still keeps (how long it keeps
  them is undocumented; tgemu forgets them after a day, or once confirmed if asked to):
  adoption.attach_invite never needs more than the promotions after its binding.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TypeVar, cast

from telethon import errors, functions, types

from botmgr.telegram import updates as upd
from botmgr.telegram.clients import (
    ClientSettings,
    Pacer,
    PooledClient,
    register_server_key,
)
from botmgr.telegram.errors import SESSION_DEAD, to_domain
from botmgr.telegram.gateway import (
    MESSAGES_PER_CALL,
    BotAccount,
    BotMemory,
    BotProfile,
    ChannelFeed,
    ChannelInfo,
    ChannelRef,
    ChannelUnresolvable,
    MessageCounts,
    PacedWait,
    Rights,
    SessionStore,
    TelegramError,
    TelegramUnavailable,
    TokenInvalid,
)
from botmgr.telegram.logins import LoginFloods, check_token, resume_session
from botmgr.telegram.media import MediaCache
from botmgr.telegram.ownership import Handover, Ownership, Unowned
from botmgr.telegram.pool import ClientPool
from botmgr.telegram.rich_gateway import RichPosts
from botmgr.telegram.tl import (
    ChannelHashes,
    by_id,
    by_username,
    rights_of,
)
from botmgr.telegram.tl import Who as _Who
from botmgr.telegram.tl import who as _who

T = TypeVar("T")

_TOKEN = re.compile(r"\d{1,20}:[A-Za-z0-9_-]{10,}")
_BROKEN = (TimeoutError, ConnectionError, OSError, errors.InvalidBufferError, *SESSION_DEAD)


class TelethonGateway(RichPosts):
    def __init__(
        self,
        *,
        api_id: int,
        api_hash: str,
        server: tuple[str, int] | None,
        public_key_pem: str | None,
        session_store: SessionStore,
        memory: BotMemory | None = None,
        call_timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_in_flight: int = 256,
        call_wait_max: float = 30.0,
        max_clients: int = 200,
        client_idle_seconds: float = 300.0,
        local_addr: str | None = None,
        ownership: Ownership | None = None,
    ) -> None:
        if server is not None and not public_key_pem:
            raise ValueError("a custom Telegram server needs its public key")
        self._settings = ClientSettings(api_id, api_hash, server, connect_timeout, local_addr)
        self._ownership = ownership or Unowned()
        self._public_key_pem = public_key_pem if server is not None else None
        self._timeout = call_timeout
        self._pool = ClientPool(
            self._settings,
            session_store,
            LoginFloods(memory),
            max_clients=max_clients,
            idle_seconds=client_idle_seconds,
        )
        # Per-bot state is keyed by _who(bot): the database id *and* the Telegram bot id,
        # so it never passes to another Telegram bot that gets the same database id
        # (ids restart in a recreated database).
        self._hashes = ChannelHashes(memory)  # (bot, channel) → access hash, stored too
        self._names: dict[tuple[_Who, str], int] = {}  # (bot, username) → channel id
        self._watches: dict[_Who, upd.AdminWatch] = {}
        # One budget per bot for all its calls in this process (pacing.py), and a bound on
        # calls in flight over all bots, so one sweep over many bots cannot take them all.
        self._pacer = Pacer()
        self._media = MediaCache()  # (bot, media_id) → the InputMedia of its upload
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._call_wait_max = call_wait_max

    def _prepare(self) -> None:
        if self._public_key_pem is not None:
            register_server_key(self._public_key_pem)

    # ------------------------------------------------------------- plumbing
    async def _call(
        self,
        bot: BotAccount,
        op: Callable[[PooledClient], Awaitable[T]],
        *,
        fallback: type[TelegramError],
        paced: bool = True,
        deadline: float | None = None,
    ) -> T:
        """Run ``op`` on the bot's pooled client. ``paced``: take a slot of the bot's
        budget first (sends take theirs in ``_pace_send``, with the channel's).
        ``deadline``: seconds for the call, when longer than ``call_timeout`` (uploads)."""
        self._prepare()
        async with self._ownership.hold(bot.bot_id) as handover:
            self._take_over(bot, handover)
            return await self._owned_call(
                bot, op, fallback=fallback, paced=paced, deadline=deadline or self._timeout
            )

    def _take_over(self, bot: BotAccount, handover: Handover | None) -> None:
        if handover is not None:  # the bot just came here: its budget comes along
            self._pacer.absorb(_who(bot), handover.pace, handover.margin, died=handover.died)

    async def _owned_call(
        self,
        bot: BotAccount,
        op: Callable[[PooledClient], Awaitable[T]],
        *,
        fallback: type[TelegramError],
        paced: bool,
        deadline: float,
    ) -> T:
        if paced:
            wait = self._pacer.reserve_call(_who(bot), max_wait=self._call_wait_max)
            if wait > self._call_wait_max:
                raise PacedWait(wait)
            if wait:
                await asyncio.sleep(wait)
        pooled: PooledClient | None = None
        try:
            # A wait for a client slot (at the pool's cap) is not Telegram's time.
            async with (
                self._in_flight,
                self._pool.lease(bot) as lease,
                asyncio.timeout(deadline),
            ):
                pooled = await lease.client()
                try:
                    return await op(pooled)
                except (*SESSION_DEAD, errors.UserMigrateError):
                    # USER_MIGRATE on a later call: the bot moved DC (core.telegram.org/
                    # api/datacenter). Telethon switched the client there with a fresh,
                    # unauthorized key (users.py _switch_dc) and the call did not run:
                    # log in again (following the migration) and run it once more.
                    pooled = await lease.client(dead=pooled)
                    return await op(pooled)
        except TelegramError:
            raise
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this call itself is being cancelled
            # Telethon cancels every call pending on a client that a concurrent call
            # disconnected (its session died, its link broke): retry, never lose the task.
            raise TelegramUnavailable("the connection was closed under the call") from None
        except Exception as exc:
            if pooled is not None and isinstance(exc, _BROKEN):
                # A timed-out or cut connection may be half-way through anything: the
                # next call starts on a new one. (Not for RPC errors: the connection is
                # fine and other calls may be using it.)
                await self._pool.drop(bot.bot_id, only=pooled)
            raise to_domain(exc, fallback=fallback) from None

    # ------------------------------------------------------------- login
    async def login(self, token: str) -> BotProfile:
        """Check ``token`` with a throw-away client; the caller stores the session."""
        if not _TOKEN.fullmatch(token):
            raise TokenInvalid("this is not a bot token")
        self._prepare()
        return await check_token(self._settings, self._pool.floods, token, within=self._timeout)

    async def resume(self, bot: BotAccount) -> BotProfile:
        """Connect with the stored session alone (never the token) and say who it is."""
        if not bot.session:
            raise TokenInvalid("no stored session")
        self._prepare()
        return await resume_session(self._settings, bot.session, within=self._timeout)

    # ------------------------------------------------------------- channels
    async def resolve_channel(self, bot: BotAccount, ref: ChannelRef) -> ChannelInfo:
        async def op(p: PooledClient) -> ChannelInfo:
            known = await self._hashes.get(bot, ref.tg_id) if ref.tg_id else None
            if ref.tg_id and known is not None:
                # Seen before: getChannels with our own hash, no resolveUsername.
                try:
                    chat = await by_id(p, ref.tg_id, known, fallback=False)
                except errors.ChannelInvalidError:
                    await self._hashes.forget(bot, ref.tg_id)
                else:
                    info = upd.channel_info(chat) if chat is not None else None
                    if info is not None:
                        await self._hashes.learn(bot, info)
                        return info
            return await self._resolve(p, bot, ref)

        return await self._call(bot, op, fallback=ChannelUnresolvable)

    async def _resolve(self, p: PooledClient, bot: BotAccount, ref: ChannelRef) -> ChannelInfo:
        if not ref.username and not ref.tg_id:
            raise ChannelUnresolvable("neither a username nor an id")
        chat = await by_username(p, ref.username) if ref.username else None
        if chat is not None and ref.tg_id and chat.id != ref.tg_id:
            chat = None  # the username now names another channel: the id is what counts
        if chat is None and ref.tg_id:
            chat = await by_id(p, ref.tg_id, ref.access_hash)
        info = upd.channel_info(chat) if chat is not None else None
        if info is None:
            raise ChannelUnresolvable("not a channel (a group, or not visible to the bot)")
        await self._hashes.learn(bot, info)
        if ref.username:
            # contacts.resolveUsername is rate-limited hard: once per name per process.
            self._names[(_who(bot), _name_key(ref.username))] = info.tg_id
        return info

    async def _input_channel(
        self, p: PooledClient, bot: BotAccount, ref: ChannelRef
    ) -> tuple[types.InputChannel, bool]:
        """The channel's InputChannel, and whether its hash came from memory (then a
        CHANNEL_INVALID answer means "resolve again", not "gone")."""
        # Only a hash this bot has learnt is trusted as is: access hashes are per account,
        # and a stored one may come from the channel's previous bot.
        tg_id = ref.tg_id
        if not tg_id and ref.username:
            tg_id = self._names.get((_who(bot), _name_key(ref.username)))
        known = await self._hashes.get(bot, tg_id) if tg_id else None
        if tg_id and known is not None:
            return types.InputChannel(tg_id, known), True
        info = await self._resolve(p, bot, ref)
        return types.InputChannel(info.tg_id, info.access_hash or 0), False

    async def _on_channel(
        self,
        p: PooledClient,
        bot: BotAccount,
        ref: ChannelRef,
        fn: Callable[[types.InputChannel], Awaitable[T]],
    ) -> T:
        """``fn`` with the channel's InputChannel; a remembered hash that Telegram now
        refuses (CHANNEL_INVALID) is dropped and the channel resolved once more."""
        input_channel, remembered = await self._input_channel(p, bot, ref)
        try:
            return await fn(input_channel)
        except errors.ChannelInvalidError:
            if not remembered:
                raise
            await self._hashes.forget(bot, input_channel.channel_id)
        info = await self._resolve(p, bot, ref)
        return await fn(types.InputChannel(info.tg_id, info.access_hash or 0))

    async def get_rights(self, bot: BotAccount, channel: ChannelRef) -> Rights:
        async def op(p: PooledClient) -> Rights:
            return await self._on_channel(p, bot, channel, lambda c: participant(p, c))

        async def participant(p: PooledClient, input_channel: types.InputChannel) -> Rights:
            try:
                answer = await p.client(
                    functions.channels.GetParticipantRequest(input_channel, types.InputPeerSelf())
                )
            except errors.UserNotParticipantError:
                return Rights(is_member=False, is_admin=False, can_post=False)
            return rights_of(answer.participant)

        return await self._call(bot, op, fallback=ChannelUnresolvable)

    # ------------------------------------------------------------- posting
    async def _pace_send(self, bot: BotAccount, channel: ChannelRef, key: int) -> None:
        """Wait for a slot in the bot's and the channel's budget (a message's, or a
        change's: ``key`` is its random_id or a stable key of the change). A wait
        longer than ``sleep_max`` keeps the slot for ``key`` and raises PacedWait."""
        async with self._ownership.hold(bot.bot_id) as handover:  # before its budget
            self._take_over(bot, handover)
            wait = self._pacer.reserve(_who(bot), channel.tg_id or 0, key)
        if wait > self._pacer.sleep_max:
            raise PacedWait(wait)  # a retry, not a sleep
        if wait:
            await asyncio.sleep(wait)

    # ------------------------------------------------------------- statistics
    async def channel_feed(
        self,
        bot: BotAccount,
        channel: ChannelRef,
        *,
        pts: int | None,
        after_id: int | None = None,
        since: datetime | None = None,
    ) -> ChannelFeed:
        async def op(p: PooledClient) -> ChannelFeed:
            return await self._on_channel(p, bot, channel, lambda c: feed(p, c))

        async def feed(p: PooledClient, input_channel: types.InputChannel) -> ChannelFeed:
            if pts is None and since is not None:  # the stream from its start, pts 1
                return await upd.follow_channel(p.client, input_channel, 1, None, since)
            if pts is None:
                full = await p.client(functions.channels.GetFullChannelRequest(input_channel))
                return ChannelFeed(pts=full.full_chat.pts)
            return await upd.follow_channel(p.client, input_channel, pts, after_id)

        return await self._call(bot, op, fallback=ChannelUnresolvable)

    async def get_views(
        self, bot: BotAccount, channel: ChannelRef, ids: list[int]
    ) -> dict[int, int]:
        return {i: c.views for i, c in (await self.message_counts(bot, channel, ids)).items()}

    async def message_counts(
        self, bot: BotAccount, channel: ChannelRef, ids: Sequence[int]
    ) -> dict[int, MessageCounts]:
        """One paced call per batch of ≤ 100 ids (a slot of the bot's budget each, as
        every other call), so a channel with many due posts cannot outrun the pacing."""

        async def read(
            p: PooledClient, input_channel: types.InputChannel, batch: list[int]
        ) -> dict[int, MessageCounts]:
            wanted = [types.InputMessageID(i) for i in batch]
            answer = await p.client(functions.channels.GetMessagesRequest(input_channel, wanted))
            return {
                m.id: MessageCounts(m.views or 0, m.forwards or 0, _reaction_total(m))
                for m in answer.messages
                if isinstance(m, types.Message)
            }

        found: dict[int, MessageCounts] = {}
        unique = sorted(set(ids))
        for start in range(0, len(unique), MESSAGES_PER_CALL):
            batch = unique[start : start + MESSAGES_PER_CALL]

            async def op(p: PooledClient, batch: list[int] = batch) -> dict[int, MessageCounts]:
                return await self._on_channel(p, bot, channel, lambda c: read(p, c, batch))

            found |= await self._call(bot, op, fallback=ChannelUnresolvable)
        return found

    async def subscribers(self, bot: BotAccount, channel: ChannelRef) -> int | None:
        async def op(p: PooledClient) -> int | None:
            return await self._on_channel(p, bot, channel, lambda c: count(p, c))

        async def count(p: PooledClient, input_channel: types.InputChannel) -> int | None:
            full = await p.client(functions.channels.GetFullChannelRequest(input_channel))
            return cast("int | None", full.full_chat.participants_count)

        return await self._call(bot, op, fallback=ChannelUnresolvable)

    async def admin_channels(self, bot: BotAccount) -> list[ChannelInfo]:
        async def op(p: PooledClient) -> list[ChannelInfo]:
            watch = self._watches.get(_who(bot))
            if watch is None:
                now = await p.client(functions.updates.GetStateRequest())
                watch = upd.AdminWatch(upd.CommonState.of(now))
                watch.state.qts = 0  # first call in this process: re-read the qts sequence
            await upd.follow_common(p.client, p.me.id, watch)
            self._watches[_who(bot)] = watch
            for info in watch.channels.values():
                await self._hashes.learn(bot, info)
            return list(watch.channels.values())

        return await self._call(bot, op, fallback=TelegramUnavailable)

    @property
    def pool(self) -> ClientPool:
        return self._pool

    def pace_of(self, bot_id: int) -> dict[str, float]:
        """The bot's pacing state, for its next owner (fleet/leases.py)."""
        return self._pacer.export(bot_id)

    async def forget_bot(self, bot_id: int) -> None:
        """This process no longer owns the bot: its client goes, and so does what the
        process alone knew of its session (the next owner may log in anew)."""
        await self._pool.forget(bot_id)

    async def place(self, bot_ids: Sequence[int]) -> dict[str, list[int]] | None:
        return await self._ownership.place(bot_ids)

    async def close(self) -> None:
        await self._pool.close()


# ----------------------------------------------------------------- helpers
def _reaction_total(message: types.Message) -> int:
    reactions = message.reactions
    if not isinstance(reactions, types.MessageReactions):
        return 0
    return sum(r.count for r in reactions.results)


def _name_key(username: str) -> str:
    return username.lstrip("@").lower()
