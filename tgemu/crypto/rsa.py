"""The server's RSA key pair and the two ways clients encrypt ``p_q_inner_data`` to it.

Telethon 1.x sends ``sha1(data) + data + random`` raised to ``e`` (raw RSA, no padding);
newer clients use RSA_PAD (AES-wrapped, sha256-checked). Both are undone here.
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from telethon.extensions import BinaryReader
from telethon.tl.tlobject import TLObject

from tgemu.crypto.aes import aes_ige_decrypt

_KEY_BYTES = 256


def load_or_create_rsa_key(private_key_path: str | None, public_key_out: str) -> rsa.RSAPrivateKey:
    """Load the private key at ``private_key_path`` (or create and keep it there if the
    file is missing; or create a throwaway one if no path) and write the PKCS#1 public
    PEM that ``telethon.crypto.rsa.add_key(pem, old=False)`` accepts to ``public_key_out``."""
    key: rsa.RSAPrivateKey
    path = Path(private_key_path) if private_key_path else None
    if path is not None and path.exists():
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey) or loaded.key_size != 2048:
            raise ValueError(f"{path} is not a 2048-bit RSA private key")
        key = loaded
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if path is not None:
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
    Path(public_key_out).write_bytes(public_pem(key))
    return key


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
    )


def _minimal_bytes(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def fingerprint(key: rsa.RSAPrivateKey) -> int:
    """Telegram's key fingerprint: the low 64 bits of sha1 over the TL-serialized n and e."""
    numbers = key.public_key().public_numbers()
    data = TLObject.serialize_bytes(_minimal_bytes(numbers.n)) + TLObject.serialize_bytes(
        _minimal_bytes(numbers.e)
    )
    return struct.unpack("<q", hashlib.sha1(data).digest()[-8:])[0]


class RsaDecryptor:
    """Raw RSA decryption with the CRT (about 4x faster than one big ``pow``) and the
    unwrapping of both client encodings of ``p_q_inner_data``."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        priv = key.private_numbers()
        self._p, self._q = priv.p, priv.q
        self._dp, self._dq, self._qinv = priv.dmp1, priv.dmq1, priv.iqmp
        self._n = priv.public_numbers.n
        self.fingerprint = fingerprint(key)

    def _raw(self, data: bytes) -> bytes | None:
        c = int.from_bytes(data, "big")
        if len(data) != _KEY_BYTES or c >= self._n:
            return None
        m1 = pow(c, self._dp, self._p)
        m2 = pow(c, self._dq, self._q)
        m = m2 + (self._qinv * (m1 - m2) % self._p) * self._q
        return m.to_bytes(_KEY_BYTES, "big")

    def decrypt_inner_data(self, encrypted: bytes) -> TLObject | None:
        """The ``p_q_inner_data*`` object the client sent, or None if it does not check out."""
        plain = self._raw(encrypted)
        if plain is None:
            return None
        return _legacy(plain) or _rsa_pad(plain)


def _read_object(data: bytes) -> tuple[TLObject, int] | None:
    try:
        with BinaryReader(data) as reader:
            obj = reader.tgread_object()
            return obj, reader.tell_position()
    except Exception:  # random bytes: anything may fail while parsing them
        return None


def _legacy(plain: bytes) -> TLObject | None:
    # sha1(data) + data + padding as one 255-byte number, so the first byte is 0.
    if plain[0] != 0:
        return None
    block = plain[1:]
    parsed = _read_object(block[20:])
    if parsed is None:
        return None
    obj, size = parsed
    if hashlib.sha1(block[20 : 20 + size]).digest() != block[:20]:
        return None
    return obj


def _rsa_pad(plain: bytes) -> TLObject | None:
    # https://core.telegram.org/mtproto/auth_key#41-rsa-paddata-server-public-key-mentioned-above-is-implemented-as-follows
    temp_key_xor, aes_encrypted = plain[:32], plain[32:]
    aes_hash = hashlib.sha256(aes_encrypted).digest()
    temp_key = bytes(a ^ b for a, b in zip(temp_key_xor, aes_hash, strict=True))
    data_with_hash = aes_ige_decrypt(aes_encrypted, temp_key, bytes(32))
    data_with_padding = data_with_hash[:192][::-1]
    if hashlib.sha256(temp_key + data_with_padding).digest() != data_with_hash[192:]:
        return None
    parsed = _read_object(data_with_padding)
    return parsed[0] if parsed else None
