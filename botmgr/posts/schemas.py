"""Request and response models of /messages and /media.

``POST /messages {channel_id, message}`` is the original's and answers as it did (202
``{"task_id"}`` + Location, or the send task's answer with ``Prefer: wait``); everything
else is an optional extension: ``channel_ids`` (a fan-out), ``send_at``, the options and
``media``. Limits are in posts/options.py with where each comes from.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from botmgr.posts.drafts import Draft
from botmgr.posts.options import (
    ALBUM_MAX,
    BUTTON_TEXT_MAX,
    BUTTON_URL_MAX,
    DELETE_AFTER_MAX,
    FAN_OUT_MAX,
)

ChannelId = int | str  # the channel's Telegram id, bare or -100…, as a number or a string


class ButtonIn(BaseModel):
    """A URL button under the post: ``url`` is http(s):// or tg://."""

    text: str = Field(min_length=1, max_length=BUTTON_TEXT_MAX)
    url: str = Field(min_length=1, max_length=BUTTON_URL_MAX)


ButtonRows = list[list[ButtonIn]]


def button_rows(buttons: ButtonRows | None) -> list[list[dict[str, str]]] | None:
    """Validated rows as the services take them (``None``: not given)."""
    return None if buttons is None else [[b.model_dump() for b in row] for row in buttons]


class MessageIn(BaseModel):
    """``channel_id`` (the original) or ``channel_ids`` (a fan-out: one post per channel,
    created together or not at all), never both."""

    channel_id: ChannelId | None = None
    channel_ids: Annotated[list[ChannelId], Field(min_length=1, max_length=FAN_OUT_MAX)] | None = (
        None
    )
    # The Markdown text, or a media post's caption ("" for none).
    message: str = Field(default="", max_length=100_000)
    # RFC 3339 with an offset; in the past (or absent) → now.
    send_at: AwareDatetime | None = None
    silent: bool = False  # no notification sound for subscribers
    disable_preview: bool = False  # no link preview
    buttons: ButtonRows | None = None  # rows of URL buttons
    delete_after: Annotated[int, Field(ge=1, le=DELETE_AFTER_MAX)] | None = None
    media: Annotated[list[int], Field(min_length=1, max_length=ALBUM_MAX)] | None = None

    @model_validator(mode="after")
    def _one_target(self) -> MessageIn:
        if (self.channel_id is None) == (self.channel_ids is None):
            raise ValueError("give either channel_id or channel_ids (a list), not both")
        return self

    def channels(self) -> list[ChannelId]:
        if self.channel_ids is not None:
            return list(self.channel_ids)
        assert self.channel_id is not None
        return [self.channel_id]

    def draft(self) -> Draft:
        """What to post, as ``service.submit`` takes it (the API's route and the console's
        composer both build it here)."""
        return Draft(
            markdown=self.message,
            send_at=self.send_at,
            silent=self.silent,
            disable_preview=self.disable_preview,
            buttons=button_rows(self.buttons),
            delete_after=self.delete_after,
            media_ids=tuple(self.media or ()),
        )


class PostPatchIn(BaseModel):
    """PATCH /messages/{post_id}: ``send_at`` reschedules a post not sent yet;
    ``message``/``buttons`` edit it (a sent post through Telegram, a queued one in place).
    ``buttons: []`` removes them."""

    send_at: AwareDatetime | None = None
    message: str | None = Field(default=None, max_length=100_000)
    buttons: ButtonRows | None = None

    @model_validator(mode="after")
    def _something(self) -> PostPatchIn:
        if self.send_at is None and self.message is None and self.buttons is None:
            raise ValueError("nothing to change: give send_at, message or buttons")
        return self


class PinIn(BaseModel):
    """POST /messages/{post_id}/pin: ``silent`` (default) pins without notifying."""

    silent: bool = True


# ---------------------------------------------------------------- answers
class PostSentOut(BaseModel):
    """The send task's answer (``Prefer: wait`` or ``GET /tasks/{id}``)."""

    post_id: int
    channel_id: int | None
    message_id: int | None  # null: sent by an earlier attempt whose answer was lost
    link: str | None
    message_ids: list[int] = []  # an album: every item's message id


class PostAccepted(BaseModel):
    """202 of POST /messages (one channel): the send task and the post it sends."""

    task_id: str
    post_id: int


class PostRef(BaseModel):
    post_id: int
    channel_id: int | None  # the channel's Telegram id (bare)
    task_id: str | None  # the task that acts on it (null: nothing to do in Telegram)
    status: str


class GroupAccepted(BaseModel):
    """202 of POST /messages with ``channel_ids``: ``post_id`` and ``task_id`` list one
    per channel, in the order given; ``posts`` pairs them; Location names the group."""

    group_id: str
    post_id: list[int]
    task_id: list[str]
    posts: list[PostRef]


class ButtonOut(BaseModel):
    text: str
    url: str


PostStatusName = Literal["queued", "sent", "failed", "cancelled", "deleted"]


class PostOut(BaseModel):
    """A post as stored (GET /messages/{post_id}, a row of GET /messages)."""

    post_id: int
    channel_id: int | None  # Telegram id (bare)
    group_id: str | None
    status: PostStatusName
    scheduled: bool  # queued with a send_at still ahead
    message: str  # the Markdown (a media post's caption)
    message_id: int | None
    message_ids: list[int]
    link: str | None  # t.me link of the (first) message
    error: str | None
    send_at: datetime | None
    sent_at: datetime | None
    silent: bool
    disable_preview: bool
    buttons: list[list[ButtonOut]]
    delete_after: int | None
    media: list[int]
    pinned: bool
    edited_at: datetime | None
    deleted_at: datetime | None
    task_id: str  # the send task (GET /tasks/{task_id})
    created_at: datetime
    updated_at: datetime


class PostPage(BaseModel):
    messages: list[PostOut]
    total: int
    limit: int
    offset: int


class ActionAccepted(BaseModel):
    """202 of an edit, delete or pin of a sent post: the task that does it."""

    task_id: str
    post_id: int


class GroupActionOut(BaseModel):
    """An action on every post of a group: one entry per post (task_id null where the
    post needed no task, e.g. a cancelled one, or was done in place)."""

    group_id: str
    posts: list[PostRef]


class PostActionDone(BaseModel):
    """The answer of an edit/delete/pin task (``Prefer: wait`` or GET /tasks/{id})."""

    post_id: int
    channel_id: int | None
    message_id: int | None
    link: str | None
    action: Literal["edited", "deleted", "pinned", "unpinned"]


class MediaOut(BaseModel):
    """201 of POST /media."""

    media_id: int
    kind: Literal["photo", "video", "document"]
    name: str
    mime: str
    size: int
