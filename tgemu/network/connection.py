"""One client TCP connection: read frames, create auth keys over plain messages,
decrypt MTProto 2.0 messages, answer service messages inline and run every RPC in its
own task; a single writer task batches answers into containers and owns the socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import time
from dataclasses import dataclass, field

from telethon.extensions import BinaryReader
from telethon.tl import functions, types
from telethon.tl.core import GzipPacked, MessageContainer
from telethon.tl.tlobject import TLObject

from tgemu.crypto.mtproto import decrypt_from_client
from tgemu.crypto.rsa import RsaDecryptor
from tgemu.dcs import DcRules, KeyPresence
from tgemu.network.calls import answer_call, rpc_error
from tgemu.network.handshake import Handshake, HandshakeError
from tgemu.network.keystore import KeyStore
from tgemu.network.session import MsgIdClock, Outgoing, Session
from tgemu.network.transport import Transport, TransportError, detect_transport
from tgemu.rpc import CallContext, Dispatcher

log = logging.getLogger("tgemu.network")

_UNKNOWN_KEY = struct.pack("<i", -404)
# A client that sends requests but never reads answers: drop it instead of buffering.
_MAX_QUEUED = 10_000
_ACK = types.MsgsAck.CONSTRUCTOR_ID
_SERVICE = {
    functions.PingRequest.CONSTRUCTOR_ID,
    functions.PingDelayDisconnectRequest.CONSTRUCTOR_ID,
    functions.DestroySessionRequest.CONSTRUCTOR_ID,
    functions.GetFutureSaltsRequest.CONSTRUCTOR_ID,
}
# Client notices the server may ignore (Telethon answers msgs_state_req with these).
_IGNORED = {
    types.MsgsStateInfo.CONSTRUCTOR_ID,
    types.MsgsAllInfo.CONSTRUCTOR_ID,
    types.MsgsStateReq.CONSTRUCTOR_ID,
    types.MsgResendReq.CONSTRUCTOR_ID,
    types.MsgDetailedInfo.CONSTRUCTOR_ID,
    types.MsgNewDetailedInfo.CONSTRUCTOR_ID,
}


@dataclass(slots=True)
class ServerParts:
    """What every connection of one listener shares (all but ``dc_id`` are shared by
    the listeners of every DC)."""

    dispatcher: Dispatcher
    keys: KeyStore
    rsa: RsaDecryptor
    clock: MsgIdClock
    dc_id: int = 2
    rules: DcRules = field(default_factory=DcRules)
    presence: KeyPresence | None = None


def _clock_error(msg_id: int) -> int:
    """Telegram's bad_msg_notification code for a client msg_id outside the accepted
    window (16: more than 300 s old, 17: more than 30 s ahead), else 0."""
    delta = (msg_id >> 32) - time.time()
    if delta < -300:
        return 16
    if delta > 30:
        return 17
    return 0


class ProtocolError(Exception):
    """The client sent something no server would accept: close the connection."""


class Connection:
    def __init__(
        self,
        parts: ServerParts,
        connection_id: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.id = connection_id
        self._parts = parts
        self._reader = reader
        self._writer = writer
        self._transport: Transport | None = None
        self._handshake = Handshake(parts.rsa, parts.keys, parts.dc_id)
        peer = writer.get_extra_info("peername")
        self.peer_ip: str = peer[0] if peer else "?"
        self._attached: int | None = None  # the key id this connection is counted under
        self.session: Session | None = None
        self._raw: list[bytes] = []
        self._outbox: list[Outgoing] = []
        self._wakeup = asyncio.Event()
        self._calls: dict[int, asyncio.Task[None]] = {}
        self._ping_timer: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def auth_key_id(self) -> int | None:
        """The canonical id of the auth key this connection speaks with, once known."""
        return self.session.auth_key.key_id if self.session else None

    async def serve(self) -> None:
        writer_task = asyncio.create_task(self._write_loop())
        try:
            self._transport = await detect_transport(self._reader)
            while not self._closed:
                self._on_packet(await self._transport.read_packet(self._reader))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away, possibly mid-frame
        except (TransportError, HandshakeError, ProtocolError) as e:
            log.info("connection %d closed: %s", self.id, e)
        except Exception:
            log.warning("connection %d closed on malformed input", self.id, exc_info=True)
        finally:
            # Telethon never half-closes: once reading ends nobody will read answers,
            # and a writer blocked on a full socket must not keep this task alive.
            self.abort()
            self._detach()
            writer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer_task

    def abort(self) -> None:
        """Close the socket now, without flushing (a dropped network)."""
        self._closed = True
        self._wakeup.set()
        if self._ping_timer:
            self._ping_timer.cancel()
        self._writer.transport.abort()

    def _detach(self) -> None:
        if self._attached is not None and self._parts.presence is not None:
            self._parts.presence.detach(self._attached, self)
        self._attached = None

    def cancel_calls(self) -> None:
        for task in list(self._calls.values()):
            task.cancel()

    def send(self, out: Outgoing) -> None:
        """Queue an encrypted message for the client (ignored once closed)."""
        if self._closed or self.session is None:
            return
        if len(self._outbox) >= _MAX_QUEUED:
            log.warning("connection %d does not read its answers; closing it", self.id)
            self.abort()
            return
        self._outbox.append(out)
        self._wakeup.set()

    def _send_raw(self, payload: bytes) -> None:
        self._raw.append(payload)
        self._wakeup.set()

    async def _write_loop(self) -> None:
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                if self._closed:
                    return
                assert self._transport is not None
                payloads, self._raw = self._raw, []
                if self._outbox and self.session is not None:
                    payloads += self.session.pack(self._outbox)
                    self._outbox = []
                for payload in payloads:
                    self._writer.write(self._transport.encode(payload))
                await self._writer.drain()
        except ConnectionError:
            self.abort()

    # -- incoming ---------------------------------------------------------------------

    def _on_packet(self, payload: bytes) -> None:
        if len(payload) < 8:
            raise ProtocolError(f"{len(payload)}-byte packet")
        (key_id,) = struct.unpack_from("<Q", payload)
        if key_id == 0:
            self._on_plain(payload)
            return
        entry = self._parts.keys.get(key_id)
        if (
            entry is not None
            and entry.dc_id != self._parts.dc_id
            and self._parts.rules.auth_key_per_dc
        ):
            entry = None  # a key is known only on the DC it was made on (see tgemu.dcs)
        if entry is None:
            self._send_raw(_UNKNOWN_KEY)
            return
        plain = decrypt_from_client(entry.key, payload)
        if plain is None:
            raise ProtocolError("msg_key mismatch")
        _salt, session_id, msg_id, seq_no, length = struct.unpack_from("<qqqii", plain)
        if not 0 <= length <= len(plain) - 32 or length % 4:
            raise ProtocolError(f"message length {length}")
        session = self.session
        if (
            session is None
            or session.session_id != session_id
            or session.auth_key.key_id != entry.key_id
        ):
            session = Session(entry, key_id, session_id, self._parts.clock)
            self.session = session
            if self._attached != entry.key_id and self._parts.presence is not None:
                self._detach()
                self._attached = entry.key_id
                self._parts.presence.attach(entry.key_id, self, self.peer_ip)
            self.send(self._new_session(msg_id, session.salt))
        clock_error = _clock_error(msg_id)
        if clock_error:
            # Telethon fixes its time offset from this notice's msg_id and resends
            # (a lone ack is not resent, so it gets no notice).
            if struct.unpack_from("<I", plain, 32)[0] != _ACK:
                notice = types.BadMsgNotification(msg_id, seq_no, clock_error)
                self.send(Outgoing(bytes(notice), content_related=False, alone=True))
            return
        self._on_message(msg_id, plain[32 : 32 + length])

    def _on_plain(self, payload: bytes) -> None:
        if len(payload) < 20:
            raise ProtocolError("short plain message")
        (length,) = struct.unpack_from("<i", payload, 16)
        with BinaryReader(payload[20 : 20 + length]) as reader:
            try:
                request = reader.tgread_object()
            except Exception as e:
                raise ProtocolError(f"unparsable plain message: {e}") from None
        answer = bytes(self._handshake.handle(request))
        msg_id = self._parts.clock.next(response=True)
        self._send_raw(struct.pack("<qqi", 0, msg_id, len(answer)) + answer)

    @staticmethod
    def _new_session(first_msg_id: int, salt: int) -> Outgoing:
        unique_id = struct.unpack("<q", os.urandom(8))[0]
        body = bytes(types.NewSessionCreated(first_msg_id, unique_id, salt))
        return Outgoing(body, content_related=True, response=False)

    def _on_message(self, msg_id: int, body: bytes) -> None:
        if len(body) < 4:
            raise ProtocolError("empty message body")
        (cid,) = struct.unpack_from("<I", body)
        if cid == MessageContainer.CONSTRUCTOR_ID:
            self._on_container(body)
        elif cid == GzipPacked.CONSTRUCTOR_ID:
            with BinaryReader(body) as reader:
                self._on_message(msg_id, GzipPacked.read(reader))
        elif cid == _ACK or cid in _IGNORED:
            pass
        elif cid in _SERVICE:
            self._on_service(msg_id, body)
        else:
            self._start_call(msg_id, body)

    def _on_container(self, body: bytes) -> None:
        # Parsed by hand rather than with MessageContainer.from_reader: one unknown
        # constructor inside must fail that one request, not the whole container.
        (count,) = struct.unpack_from("<i", body, 4)
        offset = 8
        for _ in range(count):
            msg_id, _seq_no, length = struct.unpack_from("<qii", body, offset)
            offset += 16
            if length < 0 or offset + length > len(body):
                raise ProtocolError("container overrun")
            self._on_message(msg_id, body[offset : offset + length])
            offset += length

    def _on_service(self, msg_id: int, body: bytes) -> None:
        with BinaryReader(body) as reader:
            request = reader.tgread_object()
        answer = self._service_answer(request, msg_id)
        if answer is not None:
            self.send(Outgoing(bytes(answer)))

    def _service_answer(self, request: TLObject, msg_id: int) -> TLObject | None:
        if isinstance(request, functions.PingRequest):
            return types.Pong(msg_id=msg_id, ping_id=request.ping_id)
        if isinstance(request, functions.PingDelayDisconnectRequest):
            # The client asks to be disconnected if it stays silent that long.
            if self._ping_timer:
                self._ping_timer.cancel()
            loop = asyncio.get_running_loop()
            self._ping_timer = loop.call_later(request.disconnect_delay, self.abort)
            return types.Pong(msg_id=msg_id, ping_id=request.ping_id)
        if isinstance(request, functions.GetFutureSaltsRequest):
            assert self.session is not None
            now = int(time.time())
            salt = types.FutureSalt(now, now + 3600, self.session.salt)
            return types.FutureSalts(req_msg_id=msg_id, now=now, salts=[salt])
        if isinstance(request, functions.DestroySessionRequest):
            # Sessions live as long as their connection here, so any other is unknown.
            current = self.session is not None and self.session.session_id == request.session_id
            answer = types.DestroySessionOk if current else types.DestroySessionNone
            return answer(request.session_id)
        return None

    def _start_call(self, msg_id: int, body: bytes) -> None:
        session = self.session
        assert session is not None
        presence = self._parts.presence
        if presence is not None and presence.is_duplicated(session.auth_key.key_id):
            # The key was destroyed; every call on it, from either address, hears so.
            self.send(Outgoing(rpc_error(msg_id, 406, "AUTH_KEY_DUPLICATED")))
            return
        ctx = CallContext(
            auth_key_id=session.auth_key.key_id,
            session_id=session.session_id,
            connection_id=self.id,
            dc_id=self._parts.dc_id,
        )
        task = asyncio.create_task(self._run_call(ctx, msg_id, body))
        self._calls[msg_id] = task
        task.add_done_callback(lambda _t: self._calls.pop(msg_id, None))

    async def _run_call(self, ctx: CallContext, msg_id: int, body: bytes) -> None:
        answer = await answer_call(
            self._parts.dispatcher,
            ctx,
            msg_id,
            body,
            wait_for=self._wait_for,
            service=self._service_answer,
        )
        self.send(Outgoing(answer))

    async def _wait_for(self, msg_ids: list[int]) -> None:
        pending = [self._calls[m] for m in msg_ids if m in self._calls]
        if pending:
            await asyncio.wait(pending)
