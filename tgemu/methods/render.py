"""World records → Telethon TL objects, as seen by one account (``viewer``).

What an account sees depends on who it is: access hashes are per account, ``out`` is
set on its own posts, ``left``/``admin_rights`` describe its own membership.
"""

from __future__ import annotations

import time

from telethon.tl import types

from tgemu.methods import files, markup
from tgemu.world import ADMIN_RIGHT_NAMES, Channel, Member, Message, User, World
from tgemu.world.models import ParticipantSnapshot


def user(world: World, viewer_id: int, record: User) -> types.User:
    return types.User(
        id=record.id,
        is_self=record.id == viewer_id,
        bot=record.bot,
        bot_nochats=record.bot or None,
        bot_info_version=1 if record.bot else None,
        access_hash=world.access_hash(viewer_id, record.id),
        first_name=record.first_name,
        username=record.username,
    )


def admin_rights(rights: dict[str, bool] | None) -> types.ChatAdminRights | None:
    if rights is None:
        return None
    return types.ChatAdminRights(**{name: True for name, on in rights.items() if on})


def all_rights() -> types.ChatAdminRights:
    return types.ChatAdminRights(**dict.fromkeys(ADMIN_RIGHT_NAMES, True))


def channel(world: World, viewer_id: int, record: Channel) -> types.TypeChat:
    member = record.members.get(viewer_id)
    access_hash = world.access_hash(viewer_id, record.id)
    if record.deleted or (member is None and record.username is None):
        return types.ChannelForbidden(
            id=record.id, access_hash=access_hash, title=record.title, broadcast=True
        )
    return types.Channel(
        id=record.id,
        title=record.title,
        photo=types.ChatPhotoEmpty(),
        date=record.date,
        creator=bool(member and member.creator) or None,
        left=member is None or None,
        broadcast=True,
        access_hash=access_hash,
        username=record.username,
        admin_rights=_rights_of(member),
        participants_count=len(record.members),
    )


def _rights_of(member: Member | None) -> types.ChatAdminRights | None:
    if member is None:
        return None
    if member.creator:
        return all_rights()
    return admin_rights(member.admin_rights)


def message(viewer_id: int, record: Channel, msg: Message, world: World) -> types.Message:
    """A channel post as ``viewer_id`` sees it (media with the viewer's access hash), its
    counters as they read now (``Message.counts_at``)."""
    stored = world.find_file(msg.media_id) if msg.media_id is not None else None
    views, forwards, reactions = msg.counts_at(int(time.time()))
    return types.Message(
        id=msg.id,
        peer_id=types.PeerChannel(record.id),
        date=msg.date,
        message=msg.text,
        out=msg.sender_id == viewer_id or None,
        silent=msg.silent or None,
        post=True,
        media=files.render(world, viewer_id, stored) if stored is not None else None,
        reply_markup=markup.render(msg.reply_markup),
        entities=[entity_from_dict(e) for e in msg.entities] or None,
        views=views,
        forwards=forwards,
        reactions=_reactions(reactions),
        edit_date=msg.edit_date,
        grouped_id=msg.grouped_id,
        pinned=msg.pinned or None,
    )


def _reactions(total: int) -> types.MessageReactions | None:
    # One emoji carries the total: what a reader sums is what the world holds.
    if not total:
        return None
    return types.MessageReactions(results=[types.ReactionCount(types.ReactionEmoji("👍"), total)])


def missing_message(record: Channel, message_id: int) -> types.MessageEmpty:
    # Telethon's patched MessageEmpty requires peer_id.
    return types.MessageEmpty(id=message_id, peer_id=types.PeerChannel(record.id))


def participant(
    viewer_id: int, member: Member | ParticipantSnapshot | None
) -> types.TypeChannelParticipant | None:
    if member is None:
        return None
    is_self = member.user_id == viewer_id
    if member.creator:
        return types.ChannelParticipantCreator(user_id=member.user_id, admin_rights=all_rights())
    if member.admin_rights is not None:
        promoted_by = member.promoted_by or member.inviter_id
        return types.ChannelParticipantAdmin(
            user_id=member.user_id,
            promoted_by=promoted_by,
            date=member.date,
            admin_rights=admin_rights(member.admin_rights),
            # is_self and inviter_id share one flag: both or neither.
            is_self=is_self or None,
            inviter_id=member.inviter_id if is_self else None,
        )
    if is_self:
        return types.ChannelParticipantSelf(
            user_id=member.user_id, inviter_id=member.inviter_id, date=member.date
        )
    return types.ChannelParticipant(user_id=member.user_id, date=member.date)


# -- entities: TL objects <-> JSON-friendly dicts -----------------------------------------


def entity_to_dict(entity: types.TypeMessageEntity) -> dict:
    if isinstance(entity, types.InputMessageEntityMentionName):
        # What the sender wrote as an input entity is stored the way recipients see it.
        user_id = getattr(entity.user_id, "user_id", 0)
        entity = types.MessageEntityMentionName(entity.offset, entity.length, user_id)
    return {k: v for k, v in entity.to_dict().items() if v is not None}


def entity_from_dict(data: dict) -> types.TypeMessageEntity:
    name = data.get("_", "")
    cls = getattr(types, name, None)
    if not name.startswith("MessageEntity") or cls is None:
        raise ValueError(f"unknown entity type {name!r}")
    return cls(**{k: v for k, v in data.items() if k != "_"})
