from __future__ import annotations

from pydantic import BaseModel, Field


class MessageIn(BaseModel):
    # The channel's Telegram id, bare or -100…, as a number or a string.
    channel_id: int | str
    message: str = Field(max_length=100_000)
