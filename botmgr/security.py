"""HTTP Basic auth for the API and encryption of bot secrets (tokens, Telethon sessions)."""

from __future__ import annotations

import functools
import secrets
from typing import Annotated

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from fastapi import Depends, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from botmgr.errors import TooManyAttempts, Unauthorized
from botmgr.models import Bot
from botmgr.secret_keys import Keyring, key_id
from botmgr.settings import Settings
from botmgr.telegram.gateway import BotAccount
from botmgr.throttle import LoginThrottle, client_address

_basic = HTTPBasic(auto_error=False, realm="botmgr")


#: Secrets a Cipher keeps decrypted (a bot's token and session each): a worker's bots.
DECRYPTED_KEPT = 4096


class Cipher:
    """Fernet under the current key of ``BOTMGR_SECRET_KEY``; decrypts under any readable
    key (``BOTMGR_SECRET_KEYS_OLD``, legacy derivations: botmgr/secret_keys.py).

    ``decrypt`` remembers what it decrypted (by ciphertext, at most ``DECRYPTED_KEPT``):
    the worker decrypts a bot's token and session for every post it sends, and they
    change only when the bot's row does. Kept in clear in memory, as the client pool
    keeps each bot's session and its connected client anyway."""

    def __init__(self, key: bytes | Keyring) -> None:
        keyring = key if isinstance(key, Keyring) else Keyring.single(key)
        self.key_id = key_id(keyring.current)
        self._current = Fernet(keyring.current)
        # MultiFernet encrypts with its first key and tries every key to decrypt.
        self._fernet = MultiFernet([Fernet(k) for k in keyring.readable])
        self.decrypt = functools.lru_cache(maxsize=DECRYPTED_KEPT)(self._decrypt)

    @classmethod
    def from_settings(cls, settings: Settings) -> Cipher:
        return cls(settings.keyring())

    def encrypt(self, plain: str) -> str:
        return self._current.encrypt(plain.encode()).decode()

    def _decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("secret cannot be decrypted with the configured SECRET_KEY") from exc

    def is_current(self, token: str) -> bool:
        """Whether the current key alone opens ``token``."""
        try:
            self._current.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def rotated(self, token: str) -> str | None:
        """``token`` encrypted under the current key, or None if it already is (so a
        second run of ``botmgr rotate-key`` writes nothing). ValueError if no readable
        key opens it."""
        if self.is_current(token):
            return None
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("secret cannot be decrypted with any configured key") from exc


def bot_account(bot: Bot, cipher: Cipher) -> BotAccount:
    """What the gateway needs to act as ``bot``: its token and session, decrypted."""
    session = cipher.decrypt(bot.session_encrypted) if bot.session_encrypted else None
    return BotAccount(
        bot_id=bot.id,
        token=cipher.decrypt(bot.token_encrypted),
        session=session,
        login_not_before=bot.login_not_before,
    )


def mask_token(token: str) -> str:
    """``123456:ABC…wxyz`` → ``123456:****…wxyz``: the bot id stays readable."""
    head, sep, _ = token.partition(":")
    if not sep:
        return "****"
    return mask_parts(head, token_tail(token))


def token_tail(token: str) -> str:
    """What of the token's secret part a mask shows (stored as ``bots.token_tail``, so
    listing bots needs no decryption): its last 4 characters, or "" if it is too short
    to show any."""
    _, _, tail = token.partition(":")
    return tail[-4:] if len(tail) > 8 else ""


def mask_parts(head: str | int, tail: str) -> str:
    """The mask from the bot id and ``token_tail()``: the same as ``mask_token()``."""
    return f"{head}:****…{tail}" if tail else f"{head}:****"


def _same(given: str, expected: str) -> bool:
    return secrets.compare_digest(given.encode(), expected.encode())


async def require_operator(
    request: Request, credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)]
) -> str:
    settings: Settings = request.app.state.settings
    if credentials is None:
        raise Unauthorized("authentication required")
    # Both comparisons always run so timing does not tell which part was wrong.
    user_ok = _same(credentials.username, settings.auth_username)
    pass_ok = _same(credentials.password, settings.auth_password.get_secret_value())
    throttle: LoginThrottle = request.app.state.throttle
    wait = await throttle.check(
        channel="api",
        address=client_address(request),
        username=credentials.username,
        valid=user_ok and pass_ok,
    )
    if wait is not None:
        raise TooManyAttempts(wait)
    if not (user_ok and pass_ok):
        raise Unauthorized("invalid credentials")
    return credentials.username


Operator = Annotated[str, Depends(require_operator)]
