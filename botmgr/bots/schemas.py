from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints

T = TypeVar("T")
TOKEN_PATTERN = r"^\d{1,20}:[A-Za-z0-9_-]{20,100}$"


def _strip_at(value: object) -> object:
    return value.strip().removeprefix("@") if isinstance(value, str) else value


BotName = Annotated[str, BeforeValidator(_strip_at), Field(max_length=64)]
# StringConstraints, not a BeforeValidator: the pattern must reach the OpenAPI schema.
Token = Annotated[str, StringConstraints(strip_whitespace=True, pattern=TOKEN_PATTERN)]


class BotIn(BaseModel):
    alias: str = Field(default="", max_length=255)
    description: str = Field(default="", max_length=10_000)
    token: Token
    name: BotName | None = None


class BotPatch(BaseModel):
    alias: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, max_length=10_000)
    token: Token | None = None
    name: BotName | None = None


class BotOut(BaseModel):
    id: int
    tg_id: int
    alias: str
    description: str
    name: str | None
    username: str
    bot_link: str
    first_name: str
    token: str  # masked
    status: str
    status_reason: str | None
    last_checked_at: datetime | None
    created_at: datetime
    updated_at: datetime
    bindings: dict[str, int]


class BotCreated(BaseModel):
    id: int
    new: bool


class BotDeleted(BaseModel):
    id: int
    status: str


class Envelope(BaseModel, Generic[T]):
    """The original's envelope of every /bots answer."""

    status: Literal["ok"] = "ok"
    data: T


class BotPage(Envelope[list[BotOut]]):
    total: int
    limit: int
    offset: int
