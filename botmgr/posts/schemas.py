from __future__ import annotations

from pydantic import BaseModel, Field


class MessageIn(BaseModel):
    # The channel's Telegram id, bare or -100…, as a number or a string.
    channel_id: int | str
    message: str = Field(max_length=100_000)


class PostSentOut(BaseModel):
    """The send task's answer (``Prefer: wait`` or ``GET /tasks/{id}``)."""

    post_id: int
    channel_id: int | None
    message_id: int | None  # null: sent by an earlier attempt whose answer was lost
    link: str | None
