"""What happens to a channel's messages: posts, views, edits, deletions, pins.

Every change a channel's readers are told about moves the channel's pts and is kept in
pts order, so ``updates.getChannelDifference`` can replay it: new posts through
``Channel.messages`` (each carries the pts of its updateNewChannelMessage), the rest
through ``Channel.events``. Views, forwards and reactions are not updates (counters are
read, not pushed); a post's ``history`` says what they read at each age.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tgemu.world.models import Channel, ChannelEvent, CountsPoint, Message

if TYPE_CHECKING:
    from tgemu.world.models import Snapshot


class WorldError(Exception):
    """A control-side request the world cannot satisfy; ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def now() -> int:
    return int(time.time())


class MessageOps:
    """Mixed into World: the message operations (World owns ``_s`` and ``_touch``)."""

    _s: Snapshot

    def _touch(self) -> None:  # pragma: no cover - World's own
        raise NotImplementedError

    def live_channel(self, channel_id: int) -> Channel:  # pragma: no cover - World's own
        raise NotImplementedError

    def post(
        self,
        channel: Channel,
        *,
        sender_id: int,
        text: str,
        entities: list[dict],
        random_id: int | None = None,
        date: int | None = None,
        views: int = 0,
        **rich: Any,
    ) -> Message:
        """``rich``: the other Message fields a bot's post may carry (media_id,
        grouped_id, reply_markup, silent, no_webpage)."""
        channel.last_message_id += 1
        channel.pts += 1
        message = Message(
            id=channel.last_message_id,
            date=date or now(),
            text=text,
            entities=entities,
            views=views,
            sender_id=sender_id,
            random_id=random_id,
            pts=channel.pts,
            **rich,
        )
        channel.messages[message.id] = message
        if random_id is not None and sender_id in self._s.bot_states:
            self._s.bot_states[sender_id].random_ids[random_id] = (channel.id, message.id)
        self._touch()
        return message

    def message(self, channel_id: int, message_id: int) -> tuple[Channel, Message]:
        channel = self.live_channel(channel_id)
        message = channel.messages.get(message_id)
        if message is None:
            raise WorldError(404, f"no message {message_id} in {channel.id}")
        return channel, message

    def set_views(
        self, channel_id: int, message_id: int, views: int | None, date: int | None = None
    ) -> Message:
        """Set the view counter and/or the date (a post made "days ago", for the time
        limits on deleting and editing)."""
        return self.set_counts(channel_id, message_id, views=views, date=date)

    def set_counts(
        self,
        channel_id: int,
        message_id: int,
        *,
        views: int | None = None,
        forwards: int | None = None,
        reactions: int | None = None,
        history: list[CountsPoint] | None = None,
        date: int | None = None,
    ) -> Message:
        """Set what is given: the counters, their history by age (``Message.history``;
        ``[]`` clears it) and/or the date. Counters are read, never pushed: no update."""
        _, message = self.message(channel_id, message_id)
        for name, value in (("views", views), ("forwards", forwards), ("reactions", reactions)):
            if value is not None:
                setattr(message, name, value)
        if history is not None:
            message.history = sorted(history, key=lambda p: p.age)
        if date is not None:
            message.date = date
        self._touch()
        return message

    def change(self, channel: Channel, message: Message, stream: bool, **fields: Any) -> Message:
        """A bot's edit (messages.editMessage): these fields, edit_date, one edit update."""
        for name, value in fields.items():
            setattr(message, name, value)
        message.edit_date = now()
        self._event(channel, "edit", [message.id], 1, stream)
        return message

    def _event(self, channel: Channel, kind: str, ids: list[int], count: int, stream: bool) -> None:
        # ``stream`` off is the old, kinder world: the change happens but no reader is
        # told and pts stays (PUT /config {"difference": {"stream_edits": false}}).
        if stream:
            channel.pts += count
            channel.events.append(
                ChannelEvent(kind=kind, pts=channel.pts, pts_count=count, message_ids=ids)  # type: ignore[arg-type]
            )
        self._touch()

    def edit(
        self,
        channel_id: int,
        message_id: int,
        *,
        text: str | None = None,
        times: int = 1,
        stream: bool = True,
    ) -> Message:
        """Edit a post ``times`` times (each edit is one pts, one update of one record)."""
        if times < 1:
            raise WorldError(422, "times must be at least 1")
        channel, message = self.message(channel_id, message_id)
        if text is not None:
            message.text = text
        message.edit_date = now()
        self._event(channel, "edit", [message_id], times, stream)
        return message

    def delete_messages(self, channel_id: int, ids: list[int], *, stream: bool = True) -> None:
        """Delete posts; updateDeleteChannelMessages has pts_count = the ids deleted."""
        channel = self.live_channel(channel_id)
        found = [i for i in dict.fromkeys(ids) if i in channel.messages]
        if not found:
            raise WorldError(404, f"none of {ids} is a message of {channel.id}")
        for message_id in found:
            del channel.messages[message_id]
        self._event(channel, "delete", found, len(found), stream)

    def pin(
        self, channel_id: int, message_id: int, *, pinned: bool = True, stream: bool = True
    ) -> Message:
        channel, message = self.message(channel_id, message_id)
        message.pinned = pinned
        self._event(channel, "pin" if pinned else "unpin", [message_id], 1, stream)
        return message
