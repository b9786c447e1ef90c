"""The composer's form (and the edit form's share of it): what the operator filled in,
read from the posted fields, shown again when the post is refused, and turned into the
very body POST /messages (or PATCH /messages/{id}) validates — so the console refuses
with the API's words.

Fields: ``message``; ``channel`` (repeated: the channels' Telegram ids); ``send_at`` (a
``datetime-local`` value, read in the console's time zone, ``BOTMGR_TIMEZONE``);
``silent``, ``disable_preview`` (checkboxes); ``delete_after`` + ``delete_unit``;
``button_row``/``button_text``/``button_url`` (repeated together: one button each, rows
by number); ``media`` (repeated: ids that POST /media — the console's upload — gave).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import FormData

from botmgr.errors import Invalid, validation_message
from botmgr.posts.schemas import ButtonRows, MessageIn, PostPatchIn, button_rows

UNITS = {"seconds": 1, "minutes": 60, "hours": 3600}
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> shows and sends
_ROWS = TypeAdapter(ButtonRows)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _texts(form: FormData, name: str) -> list[str]:
    return [v for v in form.getlist(name) if isinstance(v, str)]


def local_input(moment: datetime | None, zone: ZoneInfo) -> str:
    """A stored time as the ``datetime-local`` field shows it."""
    return moment.astimezone(zone).strftime(LOCAL_FORMAT) if moment else ""


def refusal(exc: ValidationError) -> Invalid:
    """Pydantic's refusal of a body, in the API's words (its 422 ``message``)."""
    return Invalid(validation_message(exc.errors())[0])


@dataclass(slots=True)
class ComposeForm:
    message: str = ""
    channels: list[str] = field(default_factory=list)
    send_at: str = ""
    silent: bool = False
    disable_preview: bool = False
    delete_after: str = ""
    delete_unit: str = "minutes"
    buttons: list[list[dict[str, str]]] = field(default_factory=list)
    media: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, form: FormData) -> ComposeForm:
        rows: dict[str, list[dict[str, str]]] = {}
        for row, text, url in zip(
            _texts(form, "button_row"),
            _texts(form, "button_text"),
            _texts(form, "button_url"),
            strict=False,
        ):
            if text.strip() or url.strip():  # an empty line of the editor is no button
                rows.setdefault(row, []).append({"text": text.strip(), "url": url.strip()})
        unit = _text(form, "delete_unit")
        return cls(
            message=_text(form, "message"),
            channels=[c.strip() for c in _texts(form, "channel") if c.strip()],
            send_at=_text(form, "send_at").strip(),
            silent=bool(form.get("silent")),
            disable_preview=bool(form.get("disable_preview")),
            delete_after=_text(form, "delete_after").strip(),
            delete_unit=unit if unit in UNITS else "minutes",
            buttons=list(rows.values()),
            media=[m.strip() for m in _texts(form, "media") if m.strip()],
        )

    def when(self, zone: ZoneInfo) -> str | None:
        """``send_at`` as RFC 3339 with the zone's offset (None: now)."""
        if not self.send_at:
            return None
        try:
            local = datetime.fromisoformat(self.send_at)
        except ValueError:
            raise Invalid("send_at: not a date and time (YYYY-MM-DD HH:MM)") from None
        return (local if local.tzinfo else local.replace(tzinfo=zone)).isoformat()

    def seconds(self) -> int | str | None:
        if not self.delete_after:
            return None
        try:
            return round(float(self.delete_after) * UNITS[self.delete_unit])
        except ValueError:
            return self.delete_after  # refused by the schema, in its words

    def message_in(self, zone: ZoneInfo) -> MessageIn:
        """The body POST /messages would get; Invalid (the API's 422 message) if refused."""
        if not self.channels:
            raise Invalid("choose at least one channel")
        body: dict[str, Any] = {
            "message": self.message,
            "send_at": self.when(zone),
            "silent": self.silent,
            "disable_preview": self.disable_preview,
            "buttons": self.buttons or None,
            "delete_after": self.seconds(),
            "media": self.media or None,
        }
        if len(self.channels) == 1:
            body["channel_id"] = self.channels[0]
        else:
            body["channel_ids"] = self.channels
        try:
            return MessageIn.model_validate(body)
        except ValidationError as exc:
            raise refusal(exc) from None

    def patch_in(self, zone: ZoneInfo, stored: Mapping[str, Any]) -> PostPatchIn:
        """The body PATCH /messages/{id} would get: what differs from ``stored`` (the
        post's ``message``, ``buttons`` and ``send_at`` as the form showed it)."""
        body: dict[str, Any] = {}
        if self.send_at and self.send_at != stored["send_at"]:
            body["send_at"] = self.when(zone)
        if self.message != stored["message"]:
            body["message"] = self.message
        if self.buttons != stored["buttons"]:
            body["buttons"] = self.buttons
        try:
            return PostPatchIn.model_validate(body)
        except ValidationError as exc:
            raise refusal(exc) from None

    def checked_buttons(self) -> list[list[dict[str, str]]]:
        """The buttons as the schema reads them (for the preview)."""
        try:
            return button_rows(_ROWS.validate_python(self.buttons)) or []
        except ValidationError as exc:
            raise Invalid(f"buttons.{validation_message(exc.errors())[0]}") from None
