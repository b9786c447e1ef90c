"""The content of a rich post as the gateway takes it: send options, URL buttons, media.

Kept apart from rich.py (the rich-post domain errors, which build on gateway.py's) so
that gateway.py can name these types without an import cycle; rich.py re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


# ---------------------------------------------------------------- values
@dataclass(frozen=True, slots=True)
class UrlButton:
    """A keyboardButtonUrl under a post. ``url``: http(s):// or tg:// (validated by the
    posts domain before it gets here)."""

    text: str
    url: str


Buttons = tuple[tuple[UrlButton, ...], ...]  # rows of buttons (replyInlineMarkup)


@dataclass(frozen=True, slots=True)
class PostOptions:
    silent: bool = False  # the ``silent`` flag: subscribers get no sound
    no_preview: bool = False  # the ``no_webpage`` flag: no link preview
    buttons: Buttons = ()


NO_OPTIONS = PostOptions()

MediaKind = Literal["photo", "video", "document"]


@dataclass(frozen=True, slots=True)
class MediaFile:
    """A file stored by the service (POST /media), to be sent as a photo, a video or a
    document. ``media_id`` is the service's id: the gateway uploads a file once per bot
    and reuses that upload (the InputMedia of its first send) for the same id."""

    media_id: int
    kind: MediaKind
    name: str
    mime: str
    data: bytes


#: messages.sendMultiMedia: an album holds 2–10 items (core.telegram.org/api/files#albums).
ALBUM_MIN, ALBUM_MAX = 2, 10
