"""Reading a bot's update streams: a channel's posts and the bot's own promotions.

Bots cannot read channel history (messages.getHistory is users-only), so the gateway
follows each channel's stream with updates.getChannelDifference from a stored pts, and
the bot's common stream with updates.getDifference. These functions turn one TL answer
into values; the loops that fetch live in the gateway.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from telethon.tl import types

from botmgr.telegram.gateway import ChannelInfo, ChannelPost

#: A loop that never sees ``final`` must still end; more slices than this in one call
#: means the caller continues from the returned position next time.
MAX_SLICES = 50


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


def posts_in(
    channel_id: int, messages: Iterable[types.TypeMessage], other_updates: Iterable = ()
) -> list[ChannelPost]:
    """Ordinary messages of ``channel_id`` (service messages and empties are not posts)."""
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
    self_id: int, updates: Iterable, chats: Iterable[types.TypeChat]
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
            promoted[update.channel_id] = info
            demoted.discard(update.channel_id)
        else:
            promoted.pop(update.channel_id, None)
            demoted.add(update.channel_id)
    return list(promoted.values()), demoted
