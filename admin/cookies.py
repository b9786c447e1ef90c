"""The console's cookies are ``Secure`` whenever the request came over TLS.

Behind nginx's TLS server (compose.tls.yaml) the API sees plain HTTP; nginx says
``X-Forwarded-Proto: https`` and uvicorn's proxy headers (``botmgr api``) make that the
request's scheme. A fixed ``https_only`` would break the plain-HTTP sandbox (browsers
drop a Secure cookie set over http://), so the flag follows each request instead: a
session cookie issued over HTTPS is never sent back over plain HTTP.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def secure(set_cookie: bytes) -> bytes:
    """A Set-Cookie value with the Secure attribute (added once)."""
    attributes = (part.strip().partition(b"=")[0].lower() for part in set_cookie.split(b";")[1:])
    return set_cookie if b"secure" in attributes else set_cookie + b"; Secure"


class SecureCookiesOverTLS:
    """Outermost console middleware: it sees every Set-Cookie the session sets."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def send_secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [
                        (name, secure(value) if name.lower() == b"set-cookie" else value)
                        for name, value in message["headers"]
                    ],
                }
            await send(message)

        await self.app(scope, receive, send_secure)
