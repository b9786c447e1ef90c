"""messages.sendMessage: a bot posting into a channel it administers (with URL buttons,
``silent`` and ``no_webpage``)."""

from __future__ import annotations

from telethon.tl import functions, types

from tgemu.methods import markup, posting
from tgemu.methods.base import Call, method


@method(functions.messages.SendMessageRequest)
def send_message(call: Call, request: functions.messages.SendMessageRequest) -> types.Updates:
    channel = posting.postable(call, request.peer)
    entities = posting.checked_text(request.message, request.entities, caption=False)
    buttons = markup.parse(request.reply_markup)
    originals = posting.sent_before(call, channel, [request.random_id])
    if originals:
        return posting.answer(call, channel, originals)  # nothing new is posted
    posting.check_rate(call, channel)
    msg = call.world.post(
        channel,
        sender_id=call.me.id,
        text=request.message,
        entities=entities,
        random_id=request.random_id,
        reply_markup=buttons,
        silent=bool(request.silent),
        no_webpage=bool(request.no_webpage),
    )
    return posting.answer(call, channel, [msg])
