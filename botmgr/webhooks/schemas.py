"""What /webhooks takes and answers. The secret is write-only: taken as a SecretStr (so
no repr or log shows it) and never part of an answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, SecretStr

from botmgr.webhooks.events import Event

#: Long enough that it cannot be guessed from signatures; what `openssl rand -hex 16` makes.
MIN_SECRET = 16
Secret = Annotated[SecretStr, Field(min_length=MIN_SECRET, max_length=512)]
Url = Annotated[str, Field(min_length=1, max_length=2048, examples=["https://example.org/hook"])]


class WebhookIn(BaseModel):
    url: Url
    secret: Secret
    # Omitted: every event. Unknown names are refused (422) with the list of known ones.
    events: list[Event] = Field(default_factory=lambda: list(Event), min_length=1)
    enabled: bool = True


class WebhookPatch(BaseModel):
    url: Url | None = None
    secret: Secret | None = None
    events: list[Event] | None = Field(default=None, min_length=1)
    enabled: bool | None = None


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[str]
    enabled: bool
    created_at: datetime
    updated_at: datetime
    # Over the endpoint's deliveries: how many wait, and how many failed for good.
    pending: int = 0
    failed: int = 0


class WebhookList(BaseModel):
    data: list[WebhookOut]


class DeliveryOut(BaseModel):
    id: int
    webhook_id: int
    event_id: str
    event: str
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None  # None once delivered or failed
    delivered_at: datetime | None
    created_at: datetime
    data: dict[str, object]


class DeliveryList(BaseModel):
    data: list[DeliveryOut]
