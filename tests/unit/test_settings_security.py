"""Settings validation, key derivation, token masking, encryption."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from botmgr.security import Cipher, mask_token
from botmgr.settings import MIN_SECRET_LENGTH, SANDBOX_SECRETS, Settings, fernet_key_from
from tests.harness.env import ROOT

GOOD = {
    "auth_password": "a-real-password-16",
    "secret_key": "a-real-secret-key-material",
    "tg_api_id": 12345,
    "tg_api_hash": "0123456789abcdef",
}
APP = {k: GOOD[k] for k in ("tg_api_id", "tg_api_hash")}


def make(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.mark.parametrize("field", ["auth_password", "secret_key"])
@pytest.mark.parametrize("value", ["", "change-me", "CHANGEME", "secret", "short"])
def test_placeholder_secrets_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=field.upper()):
        make(**{**GOOD, field: value})


@pytest.mark.parametrize("field", ["auth_password", "secret_key"])
@pytest.mark.parametrize("value", ["a" * 15, "fifteen-chars!!", "sandbox-password"])
def test_short_and_sandbox_secrets_refused_outside_dev(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=field.upper()) as refused:
        make(**{**GOOD, field: value})
    reason = "sandbox's published value" if value.startswith("sandbox") else "shorter than 16"
    assert reason in str(refused.value)
    assert value not in str(refused.value)  # the message names the rule, not the secret
    assert make(**{**GOOD, field: value}, dev=True)  # development mode takes it


def test_sixteen_characters_are_enough() -> None:
    settings = make(**{**GOOD, "auth_password": "x" * 16, "secret_key": "y" * 16})
    assert len(settings.auth_password.get_secret_value()) == MIN_SECRET_LENGTH == 16


def test_every_secret_the_sandbox_publishes_is_refused_and_it_runs_in_dev_mode() -> None:
    sandbox = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.sandbox").read_text().splitlines()
        if line and not line.startswith("#")
    )
    published = {sandbox["BOTMGR_AUTH_PASSWORD"], sandbox["BOTMGR_SECRET_KEY"]}
    assert published == SANDBOX_SECRETS
    assert sandbox["BOTMGR_DEV"] == "1"  # so the sandbox itself starts with them
    for field, value in (
        ("auth_password", sandbox["BOTMGR_AUTH_PASSWORD"]),
        ("secret_key", sandbox["BOTMGR_SECRET_KEY"]),
    ):
        with pytest.raises(ValidationError, match="sandbox's published value"):
            make(**{**GOOD, field: value})


def test_dev_flag_allows_placeholders() -> None:
    settings = make(dev=True)
    assert settings.auth_password.get_secret_value() == "change-me"


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTMGR_AUTH_PASSWORD", "from-the-env-0001")
    monkeypatch.setenv("BOTMGR_SECRET_KEY", "from-the-env-0002")
    monkeypatch.setenv("BOTMGR_TG_SERVER", "127.0.0.1:4430")
    monkeypatch.setenv("BOTMGR_TG_PUBLIC_KEY", "/nonexistent.pem")
    monkeypatch.setenv("BOTMGR_TG_API_ID", "42")
    settings = make()
    assert settings.tg_server_address == ("127.0.0.1", 4430)
    assert settings.tg_api_id == 42
    assert "from-the-env" not in repr(settings)  # secrets never printed


@pytest.mark.parametrize("server", ["localhost", "host:", ":80", "host:port"])
def test_bad_server_refused(server: str) -> None:
    with pytest.raises(ValidationError):
        make(**GOOD, tg_server=server, tg_public_key="k.pem")


def test_server_needs_its_key() -> None:
    with pytest.raises(ValidationError, match="TG_PUBLIC_KEY"):
        make(**GOOD, tg_server="127.0.0.1:4430")


@pytest.mark.parametrize(
    "app", [{}, {"tg_api_id": 0}, {"tg_api_hash": ""}, {"tg_api_hash": "  "}, {"tg_api_id": -1}]
)
def test_real_telegram_needs_an_api_id_and_hash(app: dict[str, object]) -> None:
    values = {**GOOD, **app} if app else {k: v for k, v in GOOD.items() if k not in APP}
    with pytest.raises(ValidationError, match="TG_API_ID and BOTMGR_TG_API_HASH"):
        make(**values)


def test_development_mode_may_leave_the_api_pair_unset() -> None:
    # Migrations and tools that never reach Telegram run with BOTMGR_DEV=1.
    assert make(dev=True).tg_api_id == 0


def test_a_test_server_needs_no_api_id() -> None:
    secrets = {k: v for k, v in GOOD.items() if k not in APP}
    settings = make(**secrets, tg_server="127.0.0.1:4430", tg_public_key="k.pem")
    assert settings.tg_api_id == 0


def test_blank_public_key_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # .env.example ships `BOTMGR_TG_PUBLIC_KEY=`: that must not become Path(".").
    monkeypatch.setenv("BOTMGR_TG_PUBLIC_KEY", "")
    settings = make(**GOOD)
    assert settings.tg_public_key is None
    assert settings.tg_public_key_pem() is None


def test_fernet_key_used_as_is_or_derived() -> None:
    key = Fernet.generate_key().decode()
    assert fernet_key_from(key) == key.encode()
    derived = fernet_key_from("any passphrase at all")
    assert derived == fernet_key_from("any passphrase at all")
    assert derived != fernet_key_from("another passphrase")
    Fernet(derived)  # a valid key


def test_cipher_round_trip_and_wrong_key() -> None:
    cipher = Cipher(fernet_key_from("one"))
    sealed = cipher.encrypt("123456:secret-token")
    assert "secret" not in sealed and cipher.decrypt(sealed) == "123456:secret-token"
    with pytest.raises(ValueError):
        Cipher(fernet_key_from("two")).decrypt(sealed)


@pytest.mark.parametrize(
    ("token", "masked"),
    [
        ("123456:ABCdefGHIjklMNOpqrSTUvwxyz", "123456:****…wxyz"),
        ("1:short", "1:****"),
        ("garbage", "****"),
    ],
)
def test_mask_token(token: str, masked: str) -> None:
    assert mask_token(token) == masked


def test_prefer_wait_parsing() -> None:
    from botmgr.tasks.answers import prefer_wait

    assert prefer_wait(None, 30) == 0
    assert prefer_wait("wait=5", 30) == 5
    assert prefer_wait("respond-async, wait=100", 30) == 30
    assert prefer_wait("return=minimal; wait=2.5", 30) == 2.5
    assert prefer_wait("wait=abc", 30) == 0
    assert prefer_wait("nowait=5", 30) == 0


def test_cipher_decrypts_a_secret_once_and_refuses_a_foreign_one_every_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cipher = Cipher(fernet_key_from("one"))
    sealed, other = cipher.encrypt("123:token"), cipher.encrypt("456:token")
    opened: list[bytes] = []
    fernet = cipher._fernet

    class Spy:
        def decrypt(self, token: bytes) -> bytes:
            opened.append(token)
            return fernet.decrypt(token)

    monkeypatch.setattr(cipher, "_fernet", Spy())
    assert [cipher.decrypt(sealed) for _ in range(3)] == ["123:token"] * 3
    assert cipher.decrypt(other) == "456:token"
    assert len(opened) == 2  # once per secret, not once per post
    foreign = Cipher(fernet_key_from("two"))
    for _ in range(2):  # a refusal is not remembered as an answer
        with pytest.raises(ValueError):
            foreign.decrypt(sealed)
