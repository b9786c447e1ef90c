"""Auth keys the server has created, found by the key id clients put on the wire."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from tgemu.crypto.mtproto import auth_key_ids


@dataclass(frozen=True, slots=True)
class ServerAuthKey:
    """An auth key as created. ``key_id`` is canonical: the id of these exact bytes."""

    key: bytes
    key_id: int
    aux_hash: int
    dc_id: int = 2  # the DC it was created on (keys of saved states before DCs: 2)


class KeyStore:
    """Auth keys by id. A 255-byte key is also found by the id of its 256-byte form:
    Telethon's StringSession stores keys as ``256s``, zero-padding a short key on the
    right, so a reloaded session presents a different key id for the same key. The
    padding byte lies outside every slice MTProto 2.0 reads from the key, so the key
    itself still encrypts identically; only the id differs."""

    def __init__(self) -> None:
        self._keys: dict[int, ServerAuthKey] = {}
        self._aliases: dict[int, int] = {}

    def add(self, key: bytes, dc_id: int = 2) -> ServerAuthKey:
        if not 0 < len(key) <= 256:
            raise ValueError("an auth key is at most 256 bytes")
        key_id, aux_hash = auth_key_ids(key)
        entry = ServerAuthKey(key=key, key_id=key_id, aux_hash=aux_hash, dc_id=dc_id)
        self._keys[key_id] = entry
        if len(key) < 256:
            padded_id, _ = auth_key_ids(key.ljust(256, b"\0"))
            self._aliases[padded_id] = key_id
        return entry

    def get(self, key_id: int) -> ServerAuthKey | None:
        """The key a client presents ``key_id`` for (its own id or its padded alias)."""
        entry = self._keys.get(key_id)
        if entry is None and key_id in self._aliases:
            entry = self._keys.get(self._aliases[key_id])
        return entry

    def __contains__(self, key_id: int) -> bool:
        return self.get(key_id) is not None

    def __len__(self) -> int:
        return len(self._keys)

    def remove(self, key_id: int) -> bool:
        entry = self.get(key_id)
        if entry is None:
            return False
        del self._keys[entry.key_id]
        self._aliases = {a: k for a, k in self._aliases.items() if k != entry.key_id}
        return True

    def dump(self) -> dict[str, Any]:
        keys = [base64.b64encode(e.key).decode("ascii") for e in self._keys.values()]
        return {"keys": keys, "dcs": [e.dc_id for e in self._keys.values()]}

    @classmethod
    def load(cls, data: dict[str, Any]) -> KeyStore:
        store = cls()
        keys = data.get("keys", [])
        # States written before DCs existed have no "dcs": their keys were made on DC 2.
        dcs = data.get("dcs") or [2] * len(keys)
        for encoded, dc_id in zip(keys, dcs, strict=True):
            store.add(base64.b64decode(encoded), dc_id)
        return store
