"""The records of the emulated Telegram world.

Plain pydantic models so the whole world can be dumped to JSON (``--state FILE``) and read
back without a hand-written codec. Dates are unix seconds; entities are kept in Telethon's
``to_dict()`` shape (``{"_": "MessageEntityBold", "offset": 0, "length": 4}``) so what a
client sent is what the control API shows.
"""

from __future__ import annotations

import inspect
from typing import Literal

from pydantic import BaseModel, Field
from telethon.tl.types import ChatAdminRights

# Every flag ChatAdminRights has in the pinned layer, e.g. post_messages, edit_messages …
ADMIN_RIGHT_NAMES: tuple[str, ...] = tuple(
    name for name in inspect.signature(ChatAdminRights.__init__).parameters if name != "self"
)


class User(BaseModel):
    id: int
    first_name: str
    username: str | None = None
    bot: bool = False
    token_secret: str | None = None  # the part of a bot token after the colon
    token_generation: int = 0  # bumped on revoke; authorizations carry the one they used
    dc_id: int | None = None  # a bot's home DC; None (states from before DCs): DC 2

    @property
    def token(self) -> str | None:
        return f"{self.id}:{self.token_secret}" if self.token_secret else None


class Member(BaseModel):
    user_id: int
    date: int
    inviter_id: int
    creator: bool = False
    # None: plain member. Otherwise the set flags of ChatAdminRights.
    admin_rights: dict[str, bool] | None = None
    promoted_by: int | None = None

    def can_post(self) -> bool:
        return self.creator or bool(self.admin_rights and self.admin_rights.get("post_messages"))


class StoredFile(BaseModel):
    """A photo or document Telegram keeps after an upload (messages.sendMedia /
    uploadMedia). Only what a client can observe is kept, not the bytes."""

    id: int
    kind: Literal["photo", "document"]
    size: int
    mime: str
    name: str | None = None
    w: int | None = None  # photos: the dimensions read from the image
    h: int | None = None
    video: bool = False  # a document sent with DocumentAttributeVideo
    attributes: list[dict] = Field(default_factory=list)  # the client's, to_dict() shape
    date: int
    owner_id: int  # the account that uploaded it
    file_reference: str  # hex; rotated by POST /files/expire (FILE_REFERENCE_EXPIRED)


class CountsPoint(BaseModel):
    """What a post's counters read once it is ``age`` seconds old (after its date)."""

    age: int = Field(ge=0)
    views: int = Field(default=0, ge=0)
    forwards: int = Field(default=0, ge=0)
    reactions: int = Field(default=0, ge=0)


class Message(BaseModel):
    id: int
    date: int
    text: str  # a media post's caption
    entities: list[dict] = Field(default_factory=list)
    views: int = 0
    forwards: int = 0
    reactions: int = 0  # the total of every reaction's count
    # The counters by age (sorted by ``age``): a read answers the last point the post has
    # reached (its age is now − date, so backdating the date moves it along), and the
    # plain counters above before the first point. Empty: the plain counters.
    history: list[CountsPoint] = Field(default_factory=list)
    sender_id: int
    random_id: int | None = None
    pts: int  # the channel pts this message's updateNewChannelMessage carried
    edit_date: int | None = None
    pinned: bool = False
    pin_silent: bool | None = None  # how the last pin was made (None: never pinned)
    media_id: int | None = None  # a StoredFile
    grouped_id: int | None = None  # the album this message belongs to
    # rows of URL buttons [[{"text", "url"}]] (replyInlineMarkup); None: no markup
    reply_markup: list[list[dict]] | None = None
    silent: bool = False
    no_webpage: bool = False

    def counts_at(self, now: int) -> tuple[int, int, int]:
        """(views, forwards, reactions) as read at unix time ``now``."""
        reached = [p for p in self.history if p.age <= now - self.date]
        if reached:
            point = reached[-1]
            return point.views, point.forwards, point.reactions
        return self.views, self.forwards, self.reactions


class ChannelEvent(BaseModel):
    """A channel update that is not a new post: an edit, a deletion, a pin or an unpin.

    Telegram's pts counts every such update, not only new messages ("Working with
    Updates", core.telegram.org/api/updates: pts grows with new, edited and deleted
    messages). ``pts`` is the position after the update and ``pts_count`` how many it
    covers — a bulk of N edits of one message is one record (one update in a difference,
    as Telegram merges repeated edits of a message), so a gap of 100,000+ updates is
    cheap to make.
    """

    kind: Literal["edit", "delete", "pin", "unpin"]
    pts: int
    pts_count: int = 1
    message_ids: list[int]


class Channel(BaseModel):
    id: int
    title: str
    username: str | None = None
    invite_hash: str
    date: int
    creator_id: int
    deleted: bool = False
    pts: int = 1
    last_message_id: int = 0
    members: dict[int, Member] = Field(default_factory=dict)
    messages: dict[int, Message] = Field(default_factory=dict)
    events: list[ChannelEvent] = Field(default_factory=list)  # pts order

    @property
    def bot_api_id(self) -> int:
        return int(f"-100{self.id}")

    @property
    def invite_link(self) -> str:
        return f"https://t.me/+{self.invite_hash}"


class ParticipantSnapshot(BaseModel):
    """What a member looked like at one moment (for updateChannelParticipant prev/new)."""

    user_id: int
    date: int
    inviter_id: int
    creator: bool = False
    admin_rights: dict[str, bool] | None = None
    promoted_by: int | None = None

    @classmethod
    def of(cls, member: Member | None) -> ParticipantSnapshot | None:
        return cls(**member.model_dump()) if member else None


class ParticipantUpdate(BaseModel):
    """One entry of a bot's qts-ordered update stream: updateChannelParticipant."""

    qts: int
    date: int
    channel_id: int
    actor_id: int
    user_id: int
    prev: ParticipantSnapshot | None = None
    new: ParticipantSnapshot | None = None


class BotState(BaseModel):
    """A bot account's common update state (updates.getState)."""

    pts: int = 1
    qts: int = 0
    seq: int = 0
    date: int = 0
    updates: list[ParticipantUpdate] = Field(default_factory=list)
    # random_id → (channel_id, message_id) of what this account already sent
    random_ids: dict[int, tuple[int, int]] = Field(default_factory=dict)


class Authorization(BaseModel):
    bot_id: int
    token_generation: int
    date: int


class Snapshot(BaseModel):
    secret: str
    next_user_id: int
    next_channel_id: int
    users: dict[int, User] = Field(default_factory=dict)
    channels: dict[int, Channel] = Field(default_factory=dict)
    bot_states: dict[int, BotState] = Field(default_factory=dict)
    authorizations: dict[int, Authorization] = Field(default_factory=dict)
    files: dict[int, StoredFile] = Field(default_factory=dict)
