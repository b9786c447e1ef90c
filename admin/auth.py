"""Console login (SQLAdmin's form, the API's credentials) and the gate in front of every
console URL. See the package docstring for the reasoning."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqladmin.authentication import AuthenticationBackend
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from admin.cookies import SecureCookiesOverTLS
from admin.csrf import CsrfGuard
from admin.throttled import refuse_if_throttled
from botmgr.settings import Settings

SESSION_COOKIE = "botmgr_console"
SESSION_MAX_AGE = 8 * 3600
# Reachable without a session: the login form and the only static file it links.
PUBLIC_PATHS = frozenset({"/login", "/statics/css/tabler.min.css"})


def _derive(settings: Settings, info: bytes) -> bytes:
    # From the current encryption key (scrypt's output for a passphrase), not from the
    # passphrase: a stolen cookie must not let anyone test passphrases at HKDF speed.
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(
        settings.keyring().current
    )


def session_secret(settings: Settings) -> str:
    return base64.urlsafe_b64encode(_derive(settings, b"botmgr console session v1")).decode()


def _password_mark(settings: Settings) -> str:
    # Stored in the (signed, not encrypted) cookie: a keyed digest, never the password.
    key = _derive(settings, b"botmgr console password mark v1")
    password = settings.auth_password.get_secret_value().encode()
    return hmac.new(key, password, hashlib.sha256).hexdigest()[:32]


def _same(given: str, expected: str) -> bool:
    return secrets.compare_digest(given.encode(), expected.encode())


def credentials_ok(settings: Settings, username: str, password: str) -> bool:
    # Both comparisons always run so timing does not tell which part was wrong.
    user_ok = _same(username, settings.auth_username)
    pass_ok = _same(password, settings.auth_password.get_secret_value())
    return user_ok and pass_ok


def is_operator(session: dict[str, Any], settings: Settings) -> bool:
    user, mark = session.get("user_id"), session.get("mark")
    if not isinstance(user, str) or not isinstance(mark, str):
        return False
    return _same(user, settings.auth_username) and _same(mark, _password_mark(settings))


class ConsoleGate:
    """Runs inside the session middleware, before SQLAdmin's routing: statics and any
    future route are covered, not just views decorated with ``login_required``."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, root = scope["path"], scope.get("root_path", "")
        relative = path[len(root) :] if root and path.startswith(root) else path
        if relative in PUBLIC_PATHS or is_operator(scope.get("session", {}), self.settings):
            await self.app(scope, receive, send)
            return
        response: Response
        if scope["method"] in ("GET", "HEAD") and not relative.startswith("/statics/"):
            response = RedirectResponse(f"{root}/login", status_code=302)
        else:
            response = PlainTextResponse("authentication required", status_code=401)
        await response(scope, receive, send)


class OperatorAuth(AuthenticationBackend):
    def __init__(self, settings: Settings) -> None:
        super().__init__(
            secret_key=session_secret(settings),
            session_cookie=SESSION_COOKIE,
            max_age=SESSION_MAX_AGE,
            path="/admin",
            same_site="strict",
        )
        self.settings = settings
        self.middlewares.append(Middleware(ConsoleGate, settings=settings))
        # Behind the gate: same-origin unsafe requests only, with the session's token.
        self.middlewares.append(Middleware(CsrfGuard, public_paths=PUBLIC_PATHS))
        # Outside the session middleware, so it sees the cookie it sets (admin/cookies.py).
        self.middlewares.insert(0, Middleware(SecureCookiesOverTLS))

    async def login(self, request: Request) -> bool | Response:
        form = await request.form()
        username, password = form.get("username"), form.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            return False
        valid = credentials_ok(self.settings, username, password)
        # Counted with the API's failures; past the limit a 429 page, even if valid.
        refused = await refuse_if_throttled(request, username, valid=valid)
        if refused is not None:
            return refused
        if not valid:
            return False
        request.session.clear()  # a fresh session: nothing carried over from before login
        request.session.update({"user_id": username, "mark": _password_mark(self.settings)})
        return True

    async def logout(self, request: Request) -> bool:
        request.session.clear()
        return False  # → the login form

    async def authenticate(self, request: Request) -> bool:
        return is_operator(request.session, self.settings)
