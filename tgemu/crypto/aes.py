"""AES-256-IGE through cryptg (C), the only cipher mode MTProto uses."""

from __future__ import annotations

import cryptg


def aes_ige_encrypt(data: bytes, key: bytes, iv: bytes) -> bytes:
    return cryptg.encrypt_ige(data, key, iv)


def aes_ige_decrypt(data: bytes, key: bytes, iv: bytes) -> bytes:
    return cryptg.decrypt_ige(data, key, iv)
