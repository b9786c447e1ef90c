"""The seam between the MTProto layer (``tgemu.network``) and the Telegram world
(``tgemu.methods`` over ``tgemu.world``).

The network layer owns connections, auth keys, encryption and message framing. For every
RPC it has unwrapped (invokeWithLayer, initConnection, invokeWithoutUpdates,
invokeAfterMsg, containers, gzip_packed already peeled off) it calls
``Dispatcher.invoke(ctx, request)`` in its own task, so a slow call never stalls
another, and turns the return value into ``rpc_result`` and an ``RpcError`` into
``rpc_error``. Any other exception becomes ``rpc_error(500, "INTERNAL")``: the client
has no request timeout, so an answer must always go back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from telethon.tl.tlobject import TLObject, TLRequest


class RpcError(Exception):
    """An error Telegram would send: ``code`` (400, 401, 403, 420, 500 …) and its NAME."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who is calling: the auth key the request was encrypted with and the connection."""

    auth_key_id: int
    session_id: int
    connection_id: int
    dc_id: int = 2  # the DC whose listener the call came in on


class Dispatcher(Protocol):
    async def invoke(self, ctx: CallContext, request: TLRequest) -> TLObject: ...
