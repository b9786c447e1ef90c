"""The layer's parts on their own: key store, RSA key files and paddings, message ids,
and raw-socket framing (what a broken or vanished client does to a connection)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
import struct
import time
from pathlib import Path
from zlib import crc32

import cryptg
from telethon.crypto import AuthKey
from telethon.crypto import rsa as telethon_rsa
from telethon.extensions import BinaryReader
from telethon.tl import functions, types

from tgemu.crypto.rsa import RsaDecryptor, fingerprint
from tgemu.network.session import MsgIdClock
from tgemu.server import KeyStore, MTProtoServer, load_or_create_rsa_key


def test_keystore_finds_a_short_key_by_its_padded_id_and_survives_dump() -> None:
    short, full = b"\x07" + os.urandom(254), b"\x09" + os.urandom(255)
    store = KeyStore()
    short_id, full_id = store.add(short).key_id, store.add(full).key_id
    padded_id = AuthKey(short + b"\0").key_id
    assert short_id == AuthKey(short).key_id and padded_id != short_id

    for s in (store, KeyStore.load(store.dump())):
        assert s.get(short_id).key == short and s.get(padded_id).key_id == short_id
        assert s.get(full_id).key == full
        assert s.get(12345) is None and len(s) == 2
    assert store.remove(padded_id) and store.get(short_id) is None and padded_id not in store


def test_rsa_key_file_is_created_once_and_telethon_accepts_the_pem(tmp_path: Path) -> None:
    private, public = tmp_path / "server.key", tmp_path / "server.pub"
    key = load_or_create_rsa_key(str(private), str(public))
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    again = load_or_create_rsa_key(str(private), str(tmp_path / "again.pub"))
    assert fingerprint(again) == fingerprint(key)
    pem = public.read_text()
    assert pem.startswith("-----BEGIN RSA PUBLIC KEY-----")
    telethon_rsa.add_key(pem, old=False)
    assert fingerprint(key) in telethon_rsa._server_keys


def _inner_data() -> types.PQInnerDataDc:
    return types.PQInnerDataDc(
        pq=b"\x01\x02", p=b"\x01", q=b"\x02", nonce=11, server_nonce=22, new_nonce=33, dc=2
    )


def test_rsa_decrypts_legacy_and_rsa_pad_encodings(tmp_path: Path) -> None:
    key = load_or_create_rsa_key(None, str(tmp_path / "pub.pem"))
    n, e = key.public_key().public_numbers().n, 65537
    decryptor = RsaDecryptor(key)
    data = bytes(_inner_data())

    # Telethon 1.x: sha1 + data + random, raw RSA.
    legacy = hashlib.sha1(data).digest() + data + os.urandom(235 - len(data))
    cipher = pow(int.from_bytes(legacy, "big"), e, n).to_bytes(256, "big")
    assert bytes(decryptor.decrypt_inner_data(cipher)) == data

    # RSA_PAD (core.telegram.org/mtproto/auth_key, step 4.1), as newer clients do it.
    padded = data + os.urandom(192 - len(data))
    while True:
        temp_key = os.urandom(32)
        with_hash = padded[::-1] + hashlib.sha256(temp_key + padded).digest()
        aes = cryptg.encrypt_ige(with_hash, temp_key, bytes(32))
        xored = bytes(a ^ b for a, b in zip(temp_key, hashlib.sha256(aes).digest(), strict=True))
        block = int.from_bytes(xored + aes, "big")
        if block < n:
            break
    cipher = pow(block, e, n).to_bytes(256, "big")
    assert bytes(decryptor.decrypt_inner_data(cipher)) == data

    assert decryptor.decrypt_inner_data(os.urandom(255)) is None


def test_server_msg_ids_are_odd_increasing_and_current() -> None:
    clock = MsgIdClock()
    ids = [clock.next(response=i % 2 == 0) for i in range(1000)]
    assert ids == sorted(set(ids))
    assert all(m % 4 == (1 if i % 2 == 0 else 3) for i, m in enumerate(ids))
    assert abs((ids[-1] >> 32) - int(time.time())) <= 1


def _plain(body: bytes) -> bytes:
    return struct.pack("<qqi", 0, 4 << 32, len(body)) + body


def _full(payload: bytes, seq: int = 0) -> bytes:
    frame = struct.pack("<ii", len(payload) + 12, seq) + payload
    return frame + struct.pack("<I", crc32(frame))


async def _open(server: MTProtoServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port)


async def _gone(server: MTProtoServer, count: int = 0) -> None:
    for _ in range(200):
        if server.connections == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{server.connections} connections still open")


async def test_req_pq_over_intermediate_on_a_raw_socket(net_server: MTProtoServer) -> None:
    reader, writer = await _open(net_server)
    payload = _plain(bytes(functions.ReqPqMultiRequest(nonce=1234)))
    writer.write(b"\xee\xee\xee\xee" + struct.pack("<i", len(payload)) + payload)
    (length,) = struct.unpack("<i", await asyncio.wait_for(reader.readexactly(4), 5))
    answer = await reader.readexactly(length)
    with BinaryReader(answer[20:]) as r:
        res_pq = r.tgread_object()
    assert isinstance(res_pq, types.ResPQ) and res_pq.nonce == 1234
    (msg_id,) = struct.unpack_from("<q", answer, 8)
    assert msg_id % 2 == 1
    writer.close()


async def test_unknown_key_gets_404_frame(net_server: MTProtoServer) -> None:
    reader, writer = await _open(net_server)
    writer.write(_full(struct.pack("<Q", 99) + os.urandom(56)))
    answer = await asyncio.wait_for(reader.readexactly(16), 5)
    assert struct.unpack("<iii", answer[:12])[2] == -404
    writer.close()


async def test_broken_clients_are_dropped_and_others_keep_working(
    net_server: MTProtoServer,
) -> None:
    # Gone mid-frame.
    _, writer = await _open(net_server)
    writer.write(_full(_plain(bytes(functions.ReqPqMultiRequest(nonce=1))))[:30])
    await writer.drain()
    writer.close()
    # Bad checksum, and an absurd length: the server hangs up.
    for data in (_full(b"\0" * 40)[:-4] + b"\0\0\0\0", struct.pack("<i", 1 << 30) + b"\0" * 8):
        reader, writer = await _open(net_server)
        writer.write(data)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    await _gone(net_server)

    reader, writer = await _open(net_server)
    writer.write(b"\xef" + bytes([len(p := _plain(bytes(functions.ReqPqRequest(7)))) // 4]) + p)
    head = await asyncio.wait_for(reader.readexactly(1), 5)
    answer = await reader.readexactly(head[0] * 4)
    with BinaryReader(answer[20:]) as r:
        assert r.tgread_object().nonce == 7
    writer.close()
    await _gone(net_server)
