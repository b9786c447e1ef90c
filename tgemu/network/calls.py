"""One RPC from bytes to ``rpc_result``: parse with Telethon's TL classes, peel off the
wrappers that only set connection options, ask the dispatcher, and turn whatever
happens into an answer — the client has no request timeout, so silence is a hang."""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Awaitable, Callable

from telethon.errors import TypeNotFoundError
from telethon.extensions import BinaryReader
from telethon.tl import functions, types
from telethon.tl.core import GzipPacked
from telethon.tl.tlobject import TLObject, TLRequest

from tgemu.rpc import CallContext, Dispatcher, RpcError

log = logging.getLogger("tgemu.network")

_RPC_RESULT = 0xF35C6D01
_VECTOR = 0x1CB5C415
_BOOL_TRUE = 0x997275B5
_BOOL_FALSE = 0xBC799737

_PASSTHROUGH = (
    functions.InvokeWithLayerRequest,
    functions.InitConnectionRequest,
    functions.InvokeWithoutUpdatesRequest,
)
_AFTER = (functions.InvokeAfterMsgRequest, functions.InvokeAfterMsgsRequest)

# Waits until the calls with these client msg_ids (if still running) have answered.
WaitFor = Callable[[list[int]], Awaitable[None]]
# Answers the service methods the connection itself handles (ping, future salts …), or
# None for everything the dispatcher answers.
ServiceAnswer = Callable[[TLRequest, int], TLObject | None]


def serialize_result(result: object) -> bytes:
    """TL bytes of a dispatcher's answer; ``bool`` and lists (``Vector<T>``) are accepted
    because several methods return those rather than a TLObject."""
    if isinstance(result, bool):
        return struct.pack("<I", _BOOL_TRUE if result else _BOOL_FALSE)
    if isinstance(result, TLObject):
        return bytes(result)
    if isinstance(result, list) and all(isinstance(x, TLObject) for x in result):
        return struct.pack("<Ii", _VECTOR, len(result)) + b"".join(bytes(x) for x in result)
    raise TypeError(f"cannot serialize a {type(result).__name__} as a TL answer")


def rpc_result(req_msg_id: int, body: bytes) -> bytes:
    return struct.pack("<Iq", _RPC_RESULT, req_msg_id) + GzipPacked.gzip_if_smaller(True, body)


def rpc_error(req_msg_id: int, code: int, message: str) -> bytes:
    error = bytes(types.RpcError(error_code=code, error_message=message))
    return struct.pack("<Iq", _RPC_RESULT, req_msg_id) + error


def parse_request(body: bytes) -> tuple[TLRequest, list[int]]:
    """The innermost request and the msg_ids it must run after."""
    try:
        with BinaryReader(body) as reader:
            obj = reader.tgread_object()
    except TypeNotFoundError as e:
        raise RpcError(400, f"METHOD_NOT_IMPLEMENTED_{e.invalid_constructor_id:08X}") from None
    except Exception:
        raise RpcError(400, "INPUT_FETCH_ERROR") from None
    after: list[int] = []
    while isinstance(obj, _PASSTHROUGH + _AFTER):
        if isinstance(obj, functions.InvokeAfterMsgRequest):
            after.append(obj.msg_id)
        elif isinstance(obj, functions.InvokeAfterMsgsRequest):
            after.extend(obj.msg_ids)
        obj = obj.query
    if not isinstance(obj, TLRequest):
        raise RpcError(400, f"METHOD_NOT_IMPLEMENTED_{type(obj).__name__.upper()}")
    return obj, after


async def answer_call(
    dispatcher: Dispatcher,
    ctx: CallContext,
    msg_id: int,
    body: bytes,
    *,
    wait_for: WaitFor,
    service: ServiceAnswer,
) -> bytes:
    """The ``rpc_result`` for the client message ``msg_id`` whose body is ``body``."""
    name = "?"
    try:
        request, after = parse_request(body)
        name = type(request).__name__
        if after:
            await wait_for(after)
        # Telethon wraps even ping in invokeWithoutUpdates when receive_updates=False.
        local = service(request, msg_id)
        result = local if local is not None else await dispatcher.invoke(ctx, request)
        return rpc_result(msg_id, serialize_result(result))
    except RpcError as e:
        return rpc_error(msg_id, e.code, e.message)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("%s failed inside the emulator; answering 500 INTERNAL", name)
        return rpc_error(msg_id, 500, "INTERNAL")
