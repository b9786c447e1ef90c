"""Turning Telegram's answers (real Telethon TL objects) into gateway values."""

from __future__ import annotations

from datetime import UTC, datetime

from telethon.tl import types

from botmgr.telegram import updates
from botmgr.telegram.gateway import ChannelInfo, ChannelPost, Rights
from botmgr.telegram.tl import rights_of, sent_message_id

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
RIGHTS = types.ChatAdminRights(post_messages=True)


def channel(cid: int, *, broadcast: bool = True, username: str | None = "news") -> types.Channel:
    return types.Channel(
        id=cid, title=f"T{cid}", photo=types.ChatPhotoEmpty(), date=WHEN,
        broadcast=broadcast, megagroup=not broadcast, username=username, access_hash=cid * 7,
    )  # fmt: skip


def message(cid: int, mid: int) -> types.Message:
    return types.Message(id=mid, peer_id=types.PeerChannel(cid), date=WHEN, message="hi")


def test_channel_info_only_for_broadcast_channels() -> None:
    assert updates.channel_info(channel(5)) == ChannelInfo(5, "T5", "news", 35)
    assert updates.channel_info(channel(5, broadcast=False)) is None
    assert updates.channel_info(types.ChannelForbidden(id=5, access_hash=1, title="x")) is None


def test_posts_skip_service_messages_and_other_channels() -> None:
    service = types.MessageService(
        id=3, peer_id=types.PeerChannel(9), date=WHEN, action=types.MessageActionChatCreate("x", [])
    )
    posts = updates.posts_in(
        9,
        [message(9, 1), service, message(8, 2)],
        [types.UpdateNewChannelMessage(message(9, 4), pts=5, pts_count=1)],
    )
    assert posts == [ChannelPost(1, WHEN), ChannelPost(4, WHEN)]


def test_edits_and_pins_are_no_posts_and_deletions_are_named() -> None:
    other = [
        types.UpdateEditChannelMessage(message(9, 1), pts=6, pts_count=1),
        types.UpdatePinnedChannelMessages(9, [1], pts=7, pts_count=1, pinned=True),
        types.UpdateDeleteChannelMessages(9, [2, 3], pts=9, pts_count=2),
        types.UpdateDeleteChannelMessages(8, [4], pts=3, pts_count=1),
    ]
    assert updates.posts_in(9, [], other) == []
    assert updates.deleted_in(9, other) == [2, 3]


def test_promotion_of_the_bot_then_demotion_elsewhere() -> None:
    admin = types.ChannelParticipantAdmin(
        user_id=42, promoted_by=1, date=WHEN, admin_rights=RIGHTS, rank=None
    )
    plain = types.ChannelParticipant(user_id=42, date=WHEN)

    def participant(cid: int, user: int, new: object) -> types.UpdateChannelParticipant:
        return types.UpdateChannelParticipant(
            channel_id=cid, date=WHEN, actor_id=1, user_id=user, qts=1, new_participant=new
        )

    promoted, demoted = updates.promotions(
        42,
        [participant(1, 42, admin), participant(2, 42, admin), participant(2, 42, plain),
         participant(3, 77, admin)],
        [channel(1), channel(2), channel(3)],
    )  # fmt: skip
    assert promoted == [ChannelInfo(1, "T1", "news", 7, admin_since=WHEN)]
    assert demoted == {2}


def test_rights_from_participant() -> None:
    admin = types.ChannelParticipantAdmin(
        user_id=42, promoted_by=1, date=WHEN, admin_rights=RIGHTS, rank=None
    )
    weak = types.ChannelParticipantAdmin(
        user_id=42, promoted_by=1, date=WHEN, admin_rights=types.ChatAdminRights(), rank=None
    )
    assert rights_of(admin) == Rights(True, True, True)
    assert rights_of(weak) == Rights(True, True, False)
    assert rights_of(types.ChannelParticipantSelf(user_id=42, inviter_id=1, date=WHEN)) == Rights(
        True, False, False
    )
    assert rights_of(types.ChannelParticipantLeft(types.PeerUser(42))) == Rights(
        False, False, False
    )


def test_sent_message_id_from_either_answer_shape() -> None:
    short = types.UpdateShortSentMessage(id=17, pts=3, pts_count=1, date=WHEN)
    assert sent_message_id(short, 99) == 17
    full = types.Updates(
        updates=[
            types.UpdateMessageID(id=18, random_id=99),
            types.UpdateNewChannelMessage(message(9, 18), pts=4, pts_count=1),
        ],
        users=[], chats=[], date=WHEN, seq=0,
    )  # fmt: skip
    assert sent_message_id(full, 99) == 18
    assert sent_message_id(types.Updates([], [], [], WHEN, 0), 99) is None
