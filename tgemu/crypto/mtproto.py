"""MTProto 2.0 message encryption, server side (x = 8 outgoing, x = 0 incoming)."""

from __future__ import annotations

import hashlib
import os
import struct

from tgemu.crypto.aes import aes_ige_decrypt, aes_ige_encrypt


def auth_key_ids(key: bytes) -> tuple[int, int]:
    """(key_id, aux_hash) of an auth key: low 64 bits of sha1(key) and its first 64 bits."""
    digest = hashlib.sha1(key).digest()
    aux_hash, key_id = struct.unpack("<Q4xQ", digest)
    return key_id, aux_hash


def _kdf(auth_key: bytes, msg_key: bytes, x: int) -> tuple[bytes, bytes]:
    a = hashlib.sha256(msg_key + auth_key[x : x + 36]).digest()
    b = hashlib.sha256(auth_key[x + 40 : x + 76] + msg_key).digest()
    return a[:8] + b[8:24] + a[24:32], b[:8] + a[8:24] + b[24:32]


def encrypt_for_client(auth_key: bytes, wire_key_id: int, plaintext: bytes) -> bytes:
    """``key_id | msg_key | AES-IGE(plaintext + 12..27 random bytes)``."""
    padded = plaintext + os.urandom(-(len(plaintext) + 12) % 16 + 12)
    msg_key = hashlib.sha256(auth_key[96:128] + padded).digest()[8:24]
    key, iv = _kdf(auth_key, msg_key, 8)
    return struct.pack("<Q", wire_key_id) + msg_key + aes_ige_encrypt(padded, key, iv)


def decrypt_from_client(auth_key: bytes, payload: bytes) -> bytes | None:
    """The padded plaintext of a client message, or None if its msg_key does not match."""
    body = payload[24:]
    if len(body) < 32 or len(body) % 16:
        return None
    msg_key = payload[8:24]
    key, iv = _kdf(auth_key, msg_key, 0)
    plain = aes_ige_decrypt(body, key, iv)
    if hashlib.sha256(auth_key[88:120] + plain).digest()[8:24] != msg_key:
        return None
    return plain
