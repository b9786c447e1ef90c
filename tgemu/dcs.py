"""Data centres: which DCs exist, the rules tied to them, and who uses which auth key.

Telegram's rules modelled here (each can be switched off in ``PUT /config``):

- ``dc_migration``: every account has a home DC; a login or a call on another DC is
  answered ``303 USER_MIGRATE_<home>`` (core.telegram.org/api/datacenter, "User
  migration"; TDLib ``NetQueryDispatcher::try_fix_migrate``; Telethon 1.45
  ``client/users.py`` ``_call`` switches DC on UserMigrateError).
- ``auth_key_per_dc``: an auth key is created with one DC and known only there
  (core.telegram.org/mtproto/auth_key: the key is negotiated per DC, ``p_q_inner_data_dc``
  names it); on another DC its id is unknown, answered with the transport error -404
  (Telethon ``network/mtprotosender.py``: ``InvalidBufferError`` 404 → ``AuthKeyNotFound``).
- ``auth_key_duplicated``: one key with live connections from two different source IP
  addresses at once is destroyed and both are answered ``406 AUTH_KEY_DUPLICATED``
  (core.telegram.org/api/errors, 406; Telethon ``errors/rpcerrorlist.py``
  AuthKeyDuplicatedError: "used under two different IP addresses simultaneously, and can
  no longer be used").
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

DC_IDS = (1, 2, 3, 4, 5)  # Telegram's production DCs (core.telegram.org/api/datacenter)
ENTRY_DC = 2  # where a client with an empty session connects first (Telethon DEFAULT_DC_ID)


@dataclass
class DcRules:
    dc_migration: bool = True
    auth_key_per_dc: bool = True
    auth_key_duplicated: bool = True


@dataclass
class KeyPresence:
    """Live connections per auth key, with their source IP, over every DC's listener.

    ``on_destroyed(key_id)`` runs once when a key is found duplicated (the emulator drops
    its authorization); ``forget(key_id)`` when its last connection is gone (the key is
    removed from the store, so a later connection with it gets -404)."""

    rules: DcRules
    on_destroyed: Callable[[int], object] = lambda _key_id: None
    forget: Callable[[int], object] = lambda _key_id: None
    _users: dict[int, dict[Hashable, str]] = field(default_factory=dict)  # key → conn → ip
    duplicated: set[int] = field(default_factory=set)
    destroyed: int = 0  # keys ever found duplicated (GET /metrics: auth_key_duplicated)

    def attach(self, key_id: int, connection: Hashable, ip: str) -> None:
        users = self._users.setdefault(key_id, {})
        users[connection] = ip
        if (
            self.rules.auth_key_duplicated
            and key_id not in self.duplicated
            and len(set(users.values())) > 1
        ):
            self.duplicated.add(key_id)
            self.destroyed += 1
            self.on_destroyed(key_id)

    def detach(self, key_id: int, connection: Hashable) -> None:
        users = self._users.get(key_id)
        if users is None:
            return
        users.pop(connection, None)
        if not users:
            del self._users[key_id]
            if key_id in self.duplicated:
                self.duplicated.discard(key_id)
                self.forget(key_id)

    def is_duplicated(self, key_id: int) -> bool:
        return key_id in self.duplicated


def parse_dc_ports(spec: str | None, entry_port: int) -> dict[int, int]:
    """``--dc-port-base N``-style ports: ``{dc: port}``; 0 = any free port."""
    base = int(spec) if spec else 0
    return {dc: entry_port if dc == ENTRY_DC else (base + dc if base else 0) for dc in DC_IDS}
