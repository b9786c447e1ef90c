"""The secret key's forms (generated key, passphrase), its derivation, the keys a
rotation keeps readable, and the Cipher over them."""

from __future__ import annotations

import subprocess
import time

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from botmgr.secret_keys import (
    Keyring,
    derive_hkdf_legacy,
    derive_scrypt,
    is_generated_key,
    key_id,
    parse_old_keys,
)
from botmgr.security import Cipher
from botmgr.settings import Settings
from tests.harness.env import ROOT
from tests.harness.processes import botmgr_argv

PASSPHRASE = "correct horse battery staple"
# Pinned: the key every deployment with this passphrase has encrypted its data under.
# A change of salt or parameters must fail here (and needs a rotation, not an edit).
PASSPHRASE_KEY = b"9aIkOGwcaOciNJu3-YdYzmf1K1jRfBWlAdgOGBnM2aw="


def settings(secret_key: str, old: str = "") -> Settings:
    return Settings(_env_file=None, dev=True, secret_key=secret_key, secret_keys_old=old)  # type: ignore[call-arg]


def test_generated_key_is_used_as_is() -> None:
    key = Fernet.generate_key().decode()
    assert is_generated_key(key)
    keyring = settings(key).keyring()
    assert keyring.current == key.encode() and keyring.readable == (key.encode(),)


@pytest.mark.parametrize(
    "material",
    [PASSPHRASE, "a" * 44, "!" * 44, Fernet.generate_key().decode()[:43], "x" * 45],
)
def test_anything_else_is_a_passphrase(material: str) -> None:
    assert not is_generated_key(material)
    assert settings(material).keyring().current == derive_scrypt(material)


def test_scrypt_derivation_is_stable_and_pinned() -> None:
    import base64
    import hashlib

    assert derive_scrypt(PASSPHRASE) == PASSPHRASE_KEY
    # The same from the standard library's scrypt: the parameters are what the docs say.
    independent = hashlib.scrypt(
        PASSPHRASE.encode(),
        salt=b"botmgr secret key scrypt v2",
        n=2**15,
        r=8,
        p=1,
        maxmem=64 * 1024 * 1024,
        dklen=32,
    )
    assert base64.urlsafe_b64encode(independent) == PASSPHRASE_KEY
    assert derive_scrypt("another passphrase") != PASSPHRASE_KEY
    assert derive_hkdf_legacy(PASSPHRASE) != PASSPHRASE_KEY
    Fernet(PASSPHRASE_KEY)  # a valid Fernet key


def test_scrypt_runs_once_per_process_and_passphrase() -> None:
    material = f"a passphrase of this test {time.time_ns()}"
    started = time.perf_counter()
    settings(material).keyring()
    first = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(20):
        Cipher.from_settings(settings(material))
    again = (time.perf_counter() - started) / 20
    # ~70 ms on the build machine's core: stretched for real, then not again.
    assert first > 0.02, first
    assert again < first / 5, (first, again)


def test_data_of_the_hkdf_era_stays_readable_but_is_never_written() -> None:
    legacy = Fernet(derive_hkdf_legacy(PASSPHRASE))
    stored = legacy.encrypt(b"123:token-of-0.1").decode()
    cipher = Cipher.from_settings(settings(PASSPHRASE))
    assert cipher.decrypt(stored) == "123:token-of-0.1"
    assert not cipher.is_current(stored)
    fresh = cipher.encrypt("123:token")
    assert Fernet(PASSPHRASE_KEY).decrypt(fresh.encode()) == b"123:token"
    with pytest.raises(Exception):  # noqa: B017 - InvalidToken: not under the HKDF key
        legacy.decrypt(fresh.encode())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", []),
        ("  ", []),
        ("k1", ["k1"]),
        ("k1, k2,,", ["k1", "k2"]),
        ('["a, with comma", "k2"]', ["a, with comma", "k2"]),
        ("[]", []),
    ],
)
def test_old_keys_comma_separated_or_json(value: str, expected: list[str]) -> None:
    assert parse_old_keys(value) == expected


@pytest.mark.parametrize("value", ["[not json", '{"a": 1}', "[1, 2]"])
def test_malformed_old_keys_refused_at_startup(value: str) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEYS_OLD"):
        settings(Fernet.generate_key().decode(), value)
    assert value not in repr(settings(Fernet.generate_key().decode()))


def test_old_keys_read_never_write_and_rotation_moves_to_current() -> None:
    a, b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    under_a = Cipher.from_settings(settings(a)).encrypt("123:token")
    old_passphrase = Fernet(derive_scrypt("old passphrase")).encrypt(b"456:t").decode()
    cipher = Cipher.from_settings(settings(b, f'["{a}", "old passphrase"]'))
    assert cipher.decrypt(under_a) == "123:token"
    assert cipher.decrypt(old_passphrase) == "456:t"
    assert cipher.key_id == key_id(b.encode()) != key_id(a.encode())
    rotated = cipher.rotated(under_a)
    assert rotated is not None and cipher.is_current(rotated)
    assert Cipher(b.encode()).decrypt(rotated) == "123:token"  # B alone opens it
    assert cipher.rotated(rotated) is None  # already current: nothing to write
    assert cipher.rotated(cipher.encrypt("x")) is None
    with pytest.raises(ValueError):  # under B: A alone cannot open it
        Cipher(a.encode()).decrypt(rotated)
    foreign = Fernet(Fernet.generate_key()).encrypt(b"x").decode()
    with pytest.raises(ValueError, match="any configured key"):
        cipher.rotated(foreign)


def test_keyring_readable_order_and_duplicates() -> None:
    a = Fernet.generate_key().decode()
    keyring = Keyring.from_material(PASSPHRASE, [a, a, PASSPHRASE])
    assert keyring.current == PASSPHRASE_KEY
    assert keyring.readable == (PASSPHRASE_KEY, derive_hkdf_legacy(PASSPHRASE), a.encode())


def test_gen_key_prints_a_fresh_generated_key() -> None:
    def run() -> str:
        out = subprocess.run(
            botmgr_argv("gen-key"), cwd=ROOT, capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
        assert is_generated_key(out), out
        return out

    assert run() != run()
