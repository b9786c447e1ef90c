"""What the server keeps per MTProto session: message ids, seq_no, and the packing and
encryption of everything it sends back (single messages or a msg_container)."""

from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass, field

from tgemu.crypto.mtproto import encrypt_for_client
from tgemu.network.keystore import ServerAuthKey

_CONTAINER = 0x73F1F8DC
# Telegram's own limits for a container: ~1 MB of payload, and clients count on a sane
# number of messages per container.
MAX_CONTAINER_BYTES = 1_000_000
MAX_CONTAINER_MESSAGES = 100


class MsgIdClock:
    """Server msg_ids: unix time in the high 32 bits, strictly increasing, and odd —
    ``1 mod 4`` for answers to a client message, ``3 mod 4`` for anything else."""

    def __init__(self) -> None:
        self._last = 0

    def next(self, *, response: bool) -> int:
        now = time.time()
        base = (int(now) << 32) | (int((now % 1) * 2**32) & ~3)
        base = max(base, self._last + 4)
        self._last = base
        return base | (1 if response else 3)


@dataclass(slots=True)
class Outgoing:
    body: bytes
    content_related: bool = True
    response: bool = True
    # Sent in a packet of its own: the client exempts a lone bad_msg_notification from
    # its clock check, but not a container holding one.
    alone: bool = False


@dataclass(slots=True)
class Session:
    """A client session (its session_id) under one auth key on one connection."""

    auth_key: ServerAuthKey
    wire_key_id: int  # the id the client used: replies must carry the same one
    session_id: int
    clock: MsgIdClock
    salt: int = field(default_factory=lambda: struct.unpack("<q", os.urandom(8))[0])
    _seq: int = 0

    def _seq_no(self, content_related: bool) -> int:
        if not content_related:
            return self._seq * 2
        self._seq += 1
        return self._seq * 2 - 1

    def _message(self, out: Outgoing) -> bytes:
        msg_id = self.clock.next(response=out.response)
        seq_no = self._seq_no(out.content_related)
        return struct.pack("<qii", msg_id, seq_no, len(out.body)) + out.body

    def pack(self, batch: list[Outgoing]) -> list[bytes]:
        """Encrypted payloads (one per container or lone message) for ``batch``."""
        payloads: list[bytes] = []
        chunk: list[Outgoing] = []
        size = 0
        for out in batch:
            if chunk and (
                size + len(out.body) > MAX_CONTAINER_BYTES or len(chunk) == MAX_CONTAINER_MESSAGES
            ):
                payloads.append(self._encrypt(chunk))
                chunk, size = [], 0
            chunk.append(out)
            size += len(out.body) + 16
        if chunk:
            payloads.append(self._encrypt(chunk))
        return payloads

    def _encrypt(self, chunk: list[Outgoing]) -> bytes:
        if len(chunk) == 1:
            message = self._message(chunk[0])
        else:
            # Inner ids first: a container's msg_id must exceed those of its messages.
            inner = b"".join(self._message(out) for out in chunk)
            body = struct.pack("<Ii", _CONTAINER, len(chunk)) + inner
            message = self._message(Outgoing(body, content_related=False, response=False))
        plaintext = struct.pack("<qq", self.salt, self.session_id) + message
        return encrypt_for_client(self.auth_key.key, self.wire_key_id, plaintext)
