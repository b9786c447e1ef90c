"""Cell formatting shared by the console's views."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from botmgr.models import Channel


def choices(enum: Any) -> list[tuple[str, str]]:
    return [(m.value, m.value) for m in enum]


_COLOURS = {
    "active": "green",
    "sent": "green",
    "new": "blue",
    "queued": "blue",
    "invalid": "red",
    "failed": "red",
    "scheduled": "purple",
    "cancelled": "orange",
    "deleted": "secondary",
    "pending": "blue",
    "delivered": "green",
}


def badge(value: Any) -> Markup:
    text = getattr(value, "value", value)
    colour = _COLOURS.get(str(text), "secondary")
    return Markup('<span class="badge bg-{}-lt">{}</span>').format(colour, text)


def short(text: str | None, limit: int = 36) -> Markup | str:
    """Long reasons and errors stay one line in lists; the full text is the tooltip."""
    if not text or len(text) <= limit:
        return text or ""
    return Markup('<span title="{}">{}…</span>').format(text, text[:limit].rstrip())


def channel_label(channel: Channel | None) -> str:
    if channel is None:
        return "—"
    return channel.title or (f"@{channel.username}" if channel.username else channel.reference)
