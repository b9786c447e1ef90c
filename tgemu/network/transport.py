"""TCP transports (framings) of MTProto, told apart by the first bytes a client sends:
``ef`` abridged, ``ee ee ee ee`` intermediate, ``dd dd dd dd`` padded intermediate,
anything else is the length field of a "full" frame (Telethon's default)."""

from __future__ import annotations

import asyncio
import struct
from zlib import crc32

# Telegram refuses containers above ~1 MB; anything much bigger is a broken client.
MAX_PACKET = 4 * 1024 * 1024


class TransportError(Exception):
    """The byte stream cannot be a valid frame; the connection must be closed."""


class Transport:
    name = "base"

    async def read_packet(self, reader: asyncio.StreamReader) -> bytes:
        raise NotImplementedError

    def encode(self, payload: bytes) -> bytes:
        raise NotImplementedError


def _check_length(length: int) -> int:
    if length < 0 or length > MAX_PACKET:
        raise TransportError(f"frame length {length}")
    return length


class FullTransport(Transport):
    """``<len = payload + 12><seq><payload><crc32>``; the first length was already read."""

    name = "full"

    def __init__(self, first_length: bytes) -> None:
        self._pending_length: bytes | None = first_length
        self._send_seq = 0

    async def read_packet(self, reader: asyncio.StreamReader) -> bytes:
        head = self._pending_length or await reader.readexactly(4)
        self._pending_length = None
        (length,) = struct.unpack("<i", head)
        if length < 12:
            raise TransportError(f"full frame length {length}")
        rest = await reader.readexactly(_check_length(length) - 4)
        (crc,) = struct.unpack("<I", rest[-4:])
        if crc32(head + rest[:-4]) != crc:
            raise TransportError("bad crc32")
        return rest[4:-4]

    def encode(self, payload: bytes) -> bytes:
        frame = struct.pack("<ii", len(payload) + 12, self._send_seq) + payload
        self._send_seq += 1
        return frame + struct.pack("<I", crc32(frame))


class IntermediateTransport(Transport):
    """``<int32 len><payload>``."""

    name = "intermediate"

    async def read_packet(self, reader: asyncio.StreamReader) -> bytes:
        (length,) = struct.unpack("<i", await reader.readexactly(4))
        return await reader.readexactly(_check_length(length))

    def encode(self, payload: bytes) -> bytes:
        return struct.pack("<i", len(payload)) + payload


class PaddedIntermediateTransport(IntermediateTransport):
    """Intermediate with 0-3 random bytes appended to each payload (payloads are whole
    32-bit words, so the remainder is the padding)."""

    name = "padded-intermediate"

    async def read_packet(self, reader: asyncio.StreamReader) -> bytes:
        packet = await super().read_packet(reader)
        extra = len(packet) % 4
        return packet[:-extra] if extra else packet


class AbridgedTransport(Transport):
    """``<1 byte len/4>`` or ``<7f><3 bytes len/4>`` then the payload."""

    name = "abridged"

    async def read_packet(self, reader: asyncio.StreamReader) -> bytes:
        # The high bit asks for a quick ack, which Telethon never does; ignore it.
        first = (await reader.readexactly(1))[0] & 0x7F
        if first == 0x7F:
            words = int.from_bytes(await reader.readexactly(3), "little")
        else:
            words = first
        return await reader.readexactly(_check_length(words * 4))

    def encode(self, payload: bytes) -> bytes:
        words = len(payload) // 4
        if words < 0x7F:
            return bytes([words]) + payload
        return b"\x7f" + words.to_bytes(3, "little") + payload


async def detect_transport(reader: asyncio.StreamReader) -> Transport:
    first = await reader.readexactly(1)
    if first == b"\xef":
        return AbridgedTransport()
    head = first + await reader.readexactly(3)
    if head == b"\xee\xee\xee\xee":
        return IntermediateTransport()
    if head == b"\xdd\xdd\xdd\xdd":
        return PaddedIntermediateTransport()
    return FullTransport(head)
