"""Auth-key creation over plain (unencrypted) messages: req_pq(_multi) → req_DH_params →
set_client_DH_params → dh_gen_ok. One ``Handshake`` per connection."""

from __future__ import annotations

import hashlib
import os
import random
import struct
import time
from dataclasses import dataclass

from telethon.extensions import BinaryReader
from telethon.helpers import generate_key_data_from_nonce
from telethon.tl import functions, types
from telethon.tl.tlobject import TLObject

from tgemu.crypto import dh
from tgemu.crypto.aes import aes_ige_decrypt, aes_ige_encrypt
from tgemu.crypto.rsa import RsaDecryptor
from tgemu.network.keystore import KeyStore, ServerAuthKey

_INNER_DATA = (
    types.PQInnerData,
    types.PQInnerDataDc,
    types.PQInnerDataTemp,
    types.PQInnerDataTempDc,
)


class HandshakeError(Exception):
    """The client broke the protocol; Telegram closes the connection in that case."""


def _random_prime(low: int, high: int) -> int:
    while True:
        n = random.randrange(low, high) | 1
        if all(n % d for d in range(3, int(n**0.5) + 1, 2)):
            return n


def _new_pq() -> tuple[int, int]:
    # Telegram sends a ~63-bit pq; the client factorises it with Pollard's rho in pure
    # Python (~30 ms). ~21-bit factors keep that step, at well under a millisecond.
    p = _random_prime(1 << 20, 1 << 21)
    q = _random_prime(1 << 20, 1 << 21)
    while q == p:
        q = _random_prime(1 << 20, 1 << 21)
    return min(p, q), max(p, q)


def _be(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def _nonce_hash(new_nonce: int, number: int, aux_hash: int) -> int:
    data = new_nonce.to_bytes(32, "little", signed=True) + struct.pack("<BQ", number, aux_hash)
    return int.from_bytes(hashlib.sha1(data).digest()[4:20], "little", signed=True)


@dataclass(slots=True)
class _State:
    nonce: int
    server_nonce: int
    p: int
    q: int
    new_nonce: int = 0
    secret: int = 0
    tmp_key: bytes = b""
    tmp_iv: bytes = b""


class Handshake:
    def __init__(self, rsa: RsaDecryptor, keys: KeyStore, dc_id: int = 2) -> None:
        self._rsa = rsa
        self._keys = keys
        self._dc_id = dc_id  # the listener's DC: the key belongs to it
        self._state: _State | None = None

    def handle(self, request: TLObject) -> TLObject:
        if isinstance(request, functions.ReqPqMultiRequest | functions.ReqPqRequest):
            return self._res_pq(request.nonce)
        if isinstance(request, functions.ReqDHParamsRequest):
            return self._dh_params(request)
        if isinstance(request, functions.SetClientDHParamsRequest):
            return self._dh_gen(request)
        raise HandshakeError(f"unexpected plain message {type(request).__name__}")

    def _current(self, nonce: int, server_nonce: int) -> _State:
        state = self._state
        if state is None or state.nonce != nonce or state.server_nonce != server_nonce:
            raise HandshakeError("nonce mismatch")
        return state

    def _res_pq(self, nonce: int) -> types.ResPQ:
        p, q = _new_pq()
        server_nonce = int.from_bytes(os.urandom(16), "little", signed=True)
        self._state = _State(nonce=nonce, server_nonce=server_nonce, p=p, q=q)
        return types.ResPQ(
            nonce=nonce,
            server_nonce=server_nonce,
            pq=_be(p * q),
            server_public_key_fingerprints=[self._rsa.fingerprint],
        )

    def _dh_params(self, req: functions.ReqDHParamsRequest) -> types.ServerDHParamsOk:
        state = self._current(req.nonce, req.server_nonce)
        if req.public_key_fingerprint != self._rsa.fingerprint:
            raise HandshakeError("unknown RSA fingerprint")
        # Only the product is checked: Telethon's Pollard-Brent now and then gives up
        # and sends (1, pq), which would otherwise kill about 1 handshake in 1,500.
        if int.from_bytes(req.p, "big") * int.from_bytes(req.q, "big") != state.p * state.q:
            raise HandshakeError("p * q is not pq")
        inner = self._rsa.decrypt_inner_data(req.encrypted_data)
        if not isinstance(inner, _INNER_DATA):
            raise HandshakeError("p_q_inner_data does not decrypt")
        if (inner.nonce, inner.server_nonce) != (state.nonce, state.server_nonce):
            raise HandshakeError("nonce mismatch inside p_q_inner_data")
        if inner.pq != _be(state.p * state.q):
            raise HandshakeError("pq mismatch inside p_q_inner_data")

        state.new_nonce = inner.new_nonce
        state.secret, g_a = dh.new_secret()
        state.tmp_key, state.tmp_iv = generate_key_data_from_nonce(
            state.server_nonce, state.new_nonce
        )
        answer = bytes(
            types.ServerDHInnerData(
                nonce=state.nonce,
                server_nonce=state.server_nonce,
                g=dh.G,
                dh_prime=dh.DH_PRIME_BYTES,
                g_a=_be(g_a),
                server_time=int(time.time()),
            )
        )
        with_hash = hashlib.sha1(answer).digest() + answer
        with_hash += os.urandom(-len(with_hash) % 16)
        return types.ServerDHParamsOk(
            nonce=state.nonce,
            server_nonce=state.server_nonce,
            encrypted_answer=aes_ige_encrypt(with_hash, state.tmp_key, state.tmp_iv),
        )

    def _dh_gen(self, req: functions.SetClientDHParamsRequest) -> types.DhGenOk:
        state = self._current(req.nonce, req.server_nonce)
        if not state.secret or len(req.encrypted_data) % 16:
            raise HandshakeError("set_client_DH_params out of order")
        plain = aes_ige_decrypt(req.encrypted_data, state.tmp_key, state.tmp_iv)
        with BinaryReader(plain[20:]) as reader:
            inner = reader.tgread_object()
            size = reader.tell_position()
        if not isinstance(inner, types.ClientDHInnerData):
            raise HandshakeError("client_DH_inner_data expected")
        if hashlib.sha1(plain[20 : 20 + size]).digest() != plain[:20]:
            raise HandshakeError("client_DH_inner_data hash mismatch")
        if (inner.nonce, inner.server_nonce) != (state.nonce, state.server_nonce):
            raise HandshakeError("nonce mismatch inside client_DH_inner_data")
        g_b = int.from_bytes(inner.g_b, "big")
        if not dh.in_safe_range(g_b):
            raise HandshakeError("g_b out of range")

        entry: ServerAuthKey = self._keys.add(dh.shared_key(g_b, state.secret), self._dc_id)
        self._state = None
        return types.DhGenOk(
            nonce=req.nonce,
            server_nonce=req.server_nonce,
            new_nonce_hash1=_nonce_hash(state.new_nonce, 1, entry.aux_hash),
        )
