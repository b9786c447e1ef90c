"""Methods Telegram refuses to bot accounts (BOT_METHOD_INVALID)."""

from __future__ import annotations

from telethon.tl import functions
from telethon.tl.tlobject import TLObject

from tgemu.methods.base import Call, method
from tgemu.rpc import RpcError

REFUSED_TO_BOTS = (
    functions.messages.GetHistoryRequest,
    functions.messages.SearchRequest,
    functions.messages.GetMessagesViewsRequest,
    functions.messages.CheckChatInviteRequest,
    functions.messages.ImportChatInviteRequest,
    functions.messages.GetExportedChatInviteRequest,
    functions.messages.GetDialogsRequest,
    functions.channels.JoinChannelRequest,
    functions.stats.GetBroadcastStatsRequest,
    functions.contacts.GetContactsRequest,
)


def _refuse(call: Call, request: TLObject) -> TLObject:
    raise RpcError(400, "BOT_METHOD_INVALID")


for _request_type in REFUSED_TO_BOTS:
    method(_request_type)(_refuse)
