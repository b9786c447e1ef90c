"""The control API's routes for channel posts: make, edit, pin, delete and list them
(with their media, buttons and flags), and expire file references."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from starlette.requests import Request

from tgemu.methods.files import kind_of
from tgemu.methods.render import entity_from_dict
from tgemu.world import Message, World, WorldError
from tgemu.world.models import CountsPoint, StoredFile

if TYPE_CHECKING:
    from tgemu.app import Emulator

Endpoint = Callable[["Emulator", Request], Awaitable[Any]]


async def parse(request: Request, model: type[BaseModel]) -> Any:
    raw = await request.body()
    return model.model_validate_json(raw or b"{}")


def path_int(request: Request, name: str) -> int:
    try:
        return int(request.path_params[name])
    except ValueError:
        raise WorldError(404, f"{name} must be an integer") from None


class MessageIn(BaseModel):
    text: str
    date: int | None = None
    views: int = 0
    entities: list[dict] = []
    sender_id: int | None = None  # a member of the channel; its creator by default
    # N posts at once (ids and pts consecutive): a long stream without N HTTP calls
    count: int = Field(default=1, ge=1, le=1_000_000)


class EditIn(BaseModel):
    text: str | None = None
    # N edits in one record (pts + N): a gap of 100,000+ updates in one call
    times: int = Field(default=1, ge=1, le=10_000_000)


class PinIn(BaseModel):
    pinned: bool = True


class DeleteIn(BaseModel):
    ids: list[int]


class CountsIn(BaseModel):
    views: int | None = Field(default=None, ge=0)
    forwards: int | None = Field(default=None, ge=0)
    reactions: int | None = Field(default=None, ge=0)
    # [{"age": seconds after the date, "views", "forwards", "reactions"}]: what the
    # counters read from that age on ([] clears it); see Message.history
    history: list[CountsPoint] | None = None
    date: int | None = None  # unix seconds: make a post older (time limits; its age)


def message_out(world: World, msg: Message) -> dict[str, Any]:
    stored = world.find_file(msg.media_id) if msg.media_id is not None else None
    return {
        "id": msg.id,
        "date": msg.date,
        "text": msg.text,
        "entities": msg.entities,
        "views": msg.views,
        "forwards": msg.forwards,
        "reactions": msg.reactions,
        "history": [p.model_dump() for p in msg.history],
        "sender_id": msg.sender_id,
        "random_id": msg.random_id,
        "pts": msg.pts,
        "media": media_out(stored, msg.grouped_id) if stored is not None else None,
        "reply_markup": msg.reply_markup,
        "edit_date": msg.edit_date,
        "silent": msg.silent,
        "no_webpage": msg.no_webpage,
        "pinned": msg.pinned,
        "pin_silent": msg.pin_silent,
    }


def media_out(stored: StoredFile, grouped_id: int | None) -> dict[str, Any]:
    return {
        "kind": kind_of(stored),
        "file_id": stored.id,
        "size": stored.size,
        "mime": stored.mime,
        "name": stored.name,
        "w": stored.w,
        "h": stored.h,
        "grouped_id": grouped_id,
    }


async def post_message(emu: Emulator, request: Request) -> tuple[int, dict]:
    body = await parse(request, MessageIn)
    channel = emu.world.live_channel(path_int(request, "id"))
    sender = body.sender_id or channel.creator_id
    if sender not in channel.members:
        raise WorldError(409, f"user {sender} is not a member of the channel")
    for entity in body.entities:
        entity_from_dict(entity)  # refuse what Telegram would not know
    first = None
    for _ in range(body.count):
        msg = emu.world.post(
            channel,
            sender_id=sender,
            text=body.text,
            entities=body.entities,
            date=body.date,
            views=body.views,
        )
        first = first or msg
    assert first is not None
    return 201, {**message_out(emu.world, msg), "first_id": first.id, "count": body.count}


def _stream(emu: Emulator) -> bool:
    return emu.dispatcher.difference.stream_edits


async def edit_message(emu: Emulator, request: Request) -> dict:
    body = await parse(request, EditIn)
    msg = emu.world.edit(
        path_int(request, "id"),
        path_int(request, "msg_id"),
        text=body.text,
        times=body.times,
        stream=_stream(emu),
    )
    return {
        **message_out(emu.world, msg),
        "channel_pts": emu.world.live_channel(path_int(request, "id")).pts,
    }


async def pin_message(emu: Emulator, request: Request) -> dict:
    body = await parse(request, PinIn)
    cid, mid = path_int(request, "id"), path_int(request, "msg_id")
    msg = emu.world.pin(cid, mid, pinned=body.pinned, stream=_stream(emu))
    return {**message_out(emu.world, msg), "channel_pts": emu.world.live_channel(cid).pts}


async def delete_message(emu: Emulator, request: Request) -> dict:
    cid = path_int(request, "id")
    emu.world.delete_messages(cid, [path_int(request, "msg_id")], stream=_stream(emu))
    return {"ok": True, "channel_pts": emu.world.live_channel(cid).pts}


async def delete_messages(emu: Emulator, request: Request) -> dict:
    body = await parse(request, DeleteIn)
    cid = path_int(request, "id")
    emu.world.delete_messages(cid, body.ids, stream=_stream(emu))
    return {"ok": True, "channel_pts": emu.world.live_channel(cid).pts}


async def list_messages(emu: Emulator, request: Request) -> list:
    channel = emu.world.channel(path_int(request, "id"))
    if channel is None:
        raise WorldError(404, "no such channel")
    return [message_out(emu.world, m) for m in channel.messages.values()]


async def patch_message(emu: Emulator, request: Request) -> dict:
    body = await parse(request, CountsIn)
    cid, mid = path_int(request, "id"), path_int(request, "msg_id")
    given = {name: getattr(body, name) for name in body.model_fields_set}  # models kept
    msg = emu.world.set_counts(cid, mid, **given)
    return message_out(emu.world, msg)


async def expire_files(emu: Emulator, request: Request) -> dict:
    """Every stored file gets a new file reference: the old ones are expired."""
    return {"expired": emu.world.expire_file_references()}


ROUTES: list[tuple[str, str, Endpoint]] = [
    ("/channels/{id}/messages", "POST", post_message),
    ("/channels/{id}/messages", "GET", list_messages),
    ("/channels/{id}/messages/{msg_id}", "PATCH", patch_message),
    ("/channels/{id}/messages/{msg_id}", "DELETE", delete_message),
    ("/channels/{id}/messages/delete", "POST", delete_messages),
    ("/channels/{id}/messages/{msg_id}/edit", "POST", edit_message),
    ("/channels/{id}/messages/{msg_id}/pin", "POST", pin_message),
    ("/files/expire", "POST", expire_files),
]
