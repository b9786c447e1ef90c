"""Reading a bot's update streams: a channel's posts and the bot's own promotions.

Bots cannot read channel history (messages.getHistory is users-only), so the gateway
follows each channel's stream with updates.getChannelDifference from a stored pts, and
the bot's common stream with updates.getDifference. The pure functions turn one TL
answer into values; ``follow_*`` fetch until the stream's end.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from telethon import TelegramClient, errors, functions
from telethon.tl import types

from botmgr.telegram.gateway import (
    BOT_CHANNEL_DIFF_LIMIT,
    GAP_READ_MAX,
    ChannelFeed,
    ChannelInfo,
    ChannelPost,
)

#: A loop that never sees ``final`` must still end; more slices than this in one call
#: means the caller continues from the returned position next time.
MAX_SLICES = 50
FEED_LIMIT = BOT_CHANNEL_DIFF_LIMIT
_IDS_PER_CALL = 100


def channel_info(chat: types.TypeChat) -> ChannelInfo | None:
    """A broadcast channel as ChannelInfo; None for groups, megagroups, forbidden."""
    if not isinstance(chat, types.Channel) or not chat.broadcast or chat.megagroup:
        return None
    return ChannelInfo(
        tg_id=chat.id, title=chat.title, username=chat.username, access_hash=chat.access_hash
    )


def _channel_id(message: types.TypeMessage) -> int | None:
    peer = getattr(message, "peer_id", None)
    return peer.channel_id if isinstance(peer, types.PeerChannel) else None


def deleted_in(channel_id: int, other_updates: Iterable[Any]) -> list[int]:
    """Ids of ``channel_id`` deleted in these updates (updateDeleteChannelMessages)."""
    return [
        i
        for u in other_updates
        if isinstance(u, types.UpdateDeleteChannelMessages) and u.channel_id == channel_id
        for i in u.messages
    ]


def posts_in(
    channel_id: int, messages: Iterable[types.TypeMessage], other_updates: Iterable[Any] = ()
) -> list[ChannelPost]:
    """Ordinary messages of ``channel_id`` (service messages and empties are not posts;
    updateEditChannelMessage and pins are not new posts either: only new messages)."""
    found = list(messages)
    found += [
        u.message
        for u in other_updates
        if isinstance(u, types.UpdateNewChannelMessage | types.UpdateNewMessage)
    ]
    return [
        ChannelPost(id=m.id, date=m.date)
        for m in found
        if isinstance(m, types.Message) and _channel_id(m) == channel_id
    ]


@dataclass(slots=True)
class CommonState:
    """The bot's position in its common update stream (kept in memory, see gateway)."""

    pts: int
    qts: int
    date: int  # unix time, as getDifference wants it
    seq: int = 0

    @classmethod
    def of(cls, state: types.updates.State) -> CommonState:
        return cls(pts=state.pts, qts=state.qts, date=unix_time(state.date), seq=state.seq)


@dataclass(slots=True)
class AdminWatch:
    """What the gateway knows from one bot's common stream: where it is, and the
    channels it is admin of so far."""

    state: CommonState
    channels: dict[int, ChannelInfo] = field(default_factory=dict)


def unix_time(value: object) -> int:
    timestamp = getattr(value, "timestamp", None)
    return int(timestamp()) if callable(timestamp) else int(value)  # type: ignore[call-overload]


def promotions(
    self_id: int, updates: Iterable[Any], chats: Iterable[types.TypeChat]
) -> tuple[list[ChannelInfo], set[int]]:
    """Channels the bot was made admin of in these updates, and the ids of those where
    it lost admin rights afterwards (a later update wins)."""
    by_id = {c.id: c for c in chats}
    promoted: dict[int, ChannelInfo] = {}
    demoted: set[int] = set()
    for update in updates:
        if not isinstance(update, types.UpdateChannelParticipant) or update.user_id != self_id:
            continue
        participant = update.new_participant
        is_admin = isinstance(
            participant, types.ChannelParticipantAdmin | types.ChannelParticipantCreator
        )
        info = channel_info(by_id.get(update.channel_id)) if is_admin else None
        if info is not None:
            was_admin = isinstance(
                update.prev_participant,
                types.ChannelParticipantAdmin | types.ChannelParticipantCreator,
            )
            # A change of rights is no promotion: since when it is admin stays unknown
            # here (follow_common keeps what an earlier update said).
            since = None if was_admin else datetime.fromtimestamp(unix_time(update.date), UTC)
            promoted[update.channel_id] = replace(info, admin_since=since)
            demoted.discard(update.channel_id)
        else:
            promoted.pop(update.channel_id, None)
            demoted.add(update.channel_id)
    return list(promoted.values()), demoted


# ----------------------------------------------------------------- fetching
async def follow_channel(
    client: TelegramClient,
    channel: types.InputChannel,
    pts: int,
    after_id: int | None = None,
    since: datetime | None = None,
) -> ChannelFeed:
    """Posts after ``pts`` in the channel's stream (getChannelDifference), to the end.
    With ``since`` (a first read from the stream's start, pts 1): a TooLong answer is read
    back by id downwards from its top message until a post older than ``since``."""
    posts: dict[int, ChannelPost] = {}
    deleted: set[int] = set()
    complete = True
    for _ in range(MAX_SLICES):
        try:
            diff = await client(
                functions.updates.GetChannelDifferenceRequest(
                    channel=channel,
                    filter=types.ChannelMessagesFilterEmpty(),
                    pts=pts,
                    limit=FEED_LIMIT,
                    force=True,
                )
            )
        except errors.PersistentTimestampInvalidError:
            # 400 PERSISTENT_TIMESTAMP_INVALID: the stored position is no good; start over
            # from getFullChannel's pts (TELEGRAM.md). What happened in between is unknown.
            full = await client(functions.channels.GetFullChannelRequest(channel))
            return ChannelFeed(pts=full.full_chat.pts, complete=False)
        if isinstance(diff, types.updates.ChannelDifferenceEmpty):
            pts = diff.pts
        elif isinstance(diff, types.updates.ChannelDifferenceTooLong):
            # pts + limit < remote pts (type/updates.ChannelDifference): only "the latest
            # messages" and a dialog whose pts resets the position; the gap between is
            # read back by id, which bots may do, or reported as incomplete.
            pts = diff.dialog.pts or pts
            found = posts_in(channel.channel_id, diff.messages)
            top = max([diff.dialog.top_message] + [p.id for p in found])
            if since is not None and after_id is None:
                back, reached = await read_back(client, channel, top, since)
                found += back
                complete = complete and reached
            elif after_id is not None and top - after_id <= GAP_READ_MAX:
                found += await read_range(client, channel, after_id, top)
            else:
                complete = False
            posts.update((post.id, post) for post in found)
        else:
            pts = diff.pts
            found = posts_in(channel.channel_id, diff.new_messages, diff.other_updates)
            posts.update((post.id, post) for post in found)
            deleted.update(deleted_in(channel.channel_id, diff.other_updates))
        if diff.final:
            break
    return ChannelFeed(
        pts=pts,
        posts=[
            posts[i]
            for i in sorted(posts)
            if i not in deleted and (since is None or posts[i].date >= since)
        ],
        deleted=sorted(deleted),
        complete=complete,
    )


async def read_range(
    client: TelegramClient, channel: types.InputChannel, after_id: int, top: int
) -> list[ChannelPost]:
    """The posts with ids in (after_id, top], by channels.getMessages (≤ 100 ids a call;
    deleted ids come back as messageEmpty and are skipped)."""
    found: list[ChannelPost] = []
    for start in range(after_id + 1, top + 1, _IDS_PER_CALL):
        ids = [types.InputMessageID(i) for i in range(start, min(start + _IDS_PER_CALL, top + 1))]
        answer = await client(functions.channels.GetMessagesRequest(channel, ids))
        found += posts_in(channel.channel_id, answer.messages)
    return found


async def read_back(
    client: TelegramClient, channel: types.InputChannel, top: int, since: datetime
) -> tuple[list[ChannelPost], bool]:
    """The posts dated ``since`` or later among ids ≤ ``top``, read downwards by
    channels.getMessages (≤ 100 ids a call, ≤ GAP_READ_MAX ids in all); and whether the
    read reached a post older than ``since`` (or the channel's first id)."""
    found: list[ChannelPost] = []
    end = top
    while end >= 1:
        if top - end >= GAP_READ_MAX:
            return found, False
        start = max(1, end - _IDS_PER_CALL + 1)
        ids = [types.InputMessageID(i) for i in range(start, end + 1)]
        answer = await client(functions.channels.GetMessagesRequest(channel, ids))
        batch = posts_in(channel.channel_id, answer.messages)
        found += [p for p in batch if p.date >= since]
        if any(p.date < since for p in batch):
            return found, True
        end = start - 1
    return found, True


async def follow_common(client: TelegramClient, self_id: int, watch: AdminWatch) -> None:
    """Advance ``watch`` through the bot's common update stream (getDifference)."""
    for _ in range(MAX_SLICES):
        state = watch.state
        diff = await client(
            functions.updates.GetDifferenceRequest(pts=state.pts, date=state.date, qts=state.qts)
        )
        if isinstance(diff, types.updates.DifferenceEmpty):
            state.date, state.seq = unix_time(diff.date), diff.seq
            return
        if isinstance(diff, types.updates.DifferenceTooLong):
            state.pts = diff.pts
            continue
        promoted, demoted = promotions(self_id, diff.other_updates, diff.chats)
        for channel_id in demoted:
            watch.channels.pop(channel_id, None)
        for info in promoted:
            known = watch.channels.get(info.tg_id)
            if info.admin_since is None and known is not None:
                info = replace(info, admin_since=known.admin_since)
            watch.channels[info.tg_id] = info
        if isinstance(diff, types.updates.DifferenceSlice):
            watch.state = CommonState.of(diff.intermediate_state)
            continue
        watch.state = CommonState.of(diff.state)
        return
