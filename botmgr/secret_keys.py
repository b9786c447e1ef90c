"""The keys that encrypt bot tokens and Telethon sessions at rest, from their settings.

``BOTMGR_SECRET_KEY`` (the current key: encrypts) and each of ``BOTMGR_SECRET_KEYS_OLD``
(readable only) is one of:

- a generated key (``botmgr gen-key``: a Fernet key, 32 random bytes in urlsafe base64,
  44 characters), used as is. The recommended form: nothing to guess.
- a passphrase, stretched with scrypt (n=2**15, r=8, p=1: 32 MiB and ~70 ms on one core
  of the build machine, once per process and passphrase — ``derive_scrypt`` is cached).
  A database dump then costs an attacker that much per guess, on memory-hard terms a GPU
  does not shortcut. The salt is a fixed constant of botmgr (domain separation: the same
  passphrase gives another key in any other program). A per-deployment random salt
  would only stop one precomputed dictionary serving many deployments, and would have to
  be stored where every process reads it before it can decrypt anything (the database:
  then it is in the dump too); a passphrase's strength is its length — use a generated
  key where that matters.

Up to version 0.1 a passphrase was stretched with HKDF (``derive_hkdf_legacy``), which
costs an attacker nothing per guess. Every passphrase's HKDF key stays *readable* (never
used to encrypt), so a deployment's existing data keeps working after the upgrade;
``botmgr rotate-key`` re-encrypts it under the scrypt key (docs/DEPLOY.md, "Rotating the
secret key"). Keeping it readable costs nothing once no data is encrypted under it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

# Part of every passphrase-derived key: changing any of them changes the keys, which
# needs a rotation (a new "version" of the salt, the old derivation kept readable).
SCRYPT_SALT = b"botmgr secret key scrypt v2"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1


def is_generated_key(material: str) -> bool:
    """A Fernet key (what ``generate_key`` prints): 44 characters of urlsafe base64
    encoding 32 bytes. Anything else is a passphrase."""
    if len(material) != 44:
        return False
    try:
        return len(base64.urlsafe_b64decode(material.encode())) == 32
    except (binascii.Error, ValueError):
        return False


def generate_key() -> str:
    return Fernet.generate_key().decode()


@lru_cache(maxsize=16)
def derive_scrypt(passphrase: str) -> bytes:
    """The Fernet key of a passphrase (cached: scrypt is slow on purpose)."""
    derived = Scrypt(salt=SCRYPT_SALT, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(
        passphrase.encode()
    )
    return base64.urlsafe_b64encode(derived)


def derive_hkdf_legacy(passphrase: str) -> bytes:
    """The key botmgr 0.1 derived from a passphrase: readable only, never encrypts."""
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"botmgr secrets v1"
    ).derive(passphrase.encode())
    return base64.urlsafe_b64encode(derived)


def parse_old_keys(value: str) -> list[str]:
    """``BOTMGR_SECRET_KEYS_OLD``: a JSON list of strings, or comma-separated (Fernet
    keys never contain a comma; a passphrase that does must be given in a JSON list)."""
    value = value.strip()
    if not value:
        return []
    if value[0] in "[{":  # JSON (a passphrase starting so must be in a JSON list)
        try:
            items = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError("SECRET_KEYS_OLD is not a valid JSON list") from None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValueError("SECRET_KEYS_OLD as JSON must be a list of strings")
    else:
        items = value.split(",")
    return [item.strip() for item in items if item.strip()]


@dataclass(frozen=True, slots=True)
class Keyring:
    """``current`` encrypts; every key of ``readable`` (current first) may decrypt."""

    current: bytes
    readable: tuple[bytes, ...]

    @classmethod
    def from_material(cls, current: str, old: list[str] | tuple[str, ...] = ()) -> Keyring:
        first = _keys_of(current)
        readable = list(first)
        for material in old:
            readable += [k for k in _keys_of(material) if k not in readable]
        return cls(current=first[0], readable=tuple(readable))

    @classmethod
    def single(cls, key: bytes) -> Keyring:
        return cls(current=key, readable=(key,))


@lru_cache(maxsize=8)
def keyring_of(current: str, old: str) -> Keyring:
    """The keyring of the two settings' values (cached: the console derives its cookie
    keys from it on every request)."""
    return Keyring.from_material(current, parse_old_keys(old))


def _keys_of(material: str) -> list[bytes]:
    """The key of one setting, then what else it may have encrypted under (legacy)."""
    if is_generated_key(material):
        return [material.encode()]
    return [derive_scrypt(material), derive_hkdf_legacy(material)]


def key_id(key: bytes) -> str:
    """A short public name of a key (for "which key does each process encrypt with"): 8
    hex digits of a hash, which tells nothing of the key beyond what any of its
    ciphertexts already let one check."""
    return hashlib.sha256(b"botmgr key id|" + key).hexdigest()[:8]
