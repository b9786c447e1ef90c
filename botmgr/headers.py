"""Security headers on every answer of the app (the API's JSON, the console's pages, the
docs): the browser neither sniffs types, nor frames us, nor leaks our URLs to other sites,
nor runs script or loads anything from another origin.

The Content-Security-Policy allows scripts from files of this origin only — no inline
script, no ``eval``: SQLAdmin's pages load their scripts from files, and the one inline
script of its templates (flash toasts) and the console's one inline handler moved to
``admin/static/js/console.js``. Styles likewise (its templates set none inline but in the
CSV import dialog, which the console does not offer); ``data:`` images are Tabler's SVG
icons in its stylesheet. ``form-action 'self'`` keeps forms from posting elsewhere.

``/docs`` and ``/redoc`` are the exception: FastAPI's pages start Swagger UI and ReDoc with
an inline script, ReDoc injects its styles and runs a worker from a ``blob:``; there the
policy also allows inline scripts and styles and blob workers — still nothing from another
origin. (Serve their start-up script as a file and ``DOCS_POLICY`` can drop
``'unsafe-inline'`` for scripts.)

A response that already sets one of these headers keeps its own value. HSTS is set by
nginx's TLS server, where the scheme is known.

Why not the ``secure`` package: it applies one policy to every answer; this needs two (by
path), and five constant headers are a few lines.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_COMMON = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
_DOCS = {
    **_COMMON,
    "script-src": "'self' 'unsafe-inline'",
    "style-src": "'self' 'unsafe-inline'",
    "worker-src": "'self' blob:",
}


def _policy(directives: dict[str, str]) -> str:
    return "; ".join(f"{name} {value}" for name, value in directives.items())


POLICY = _policy(_COMMON)
DOCS_POLICY = _policy(_DOCS)
DOCS_PATHS = ("/docs", "/redoc")

_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)


_PLAIN = (*_HEADERS, (b"content-security-policy", POLICY.encode()))
_FOR_DOCS = (*_HEADERS, (b"content-security-policy", DOCS_POLICY.encode()))


class SecurityHeaders:
    """Pure ASGI (no per-request objects beyond the send wrapper): the API's hot paths
    pay a closure and a scan of the response's few headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = _FOR_DOCS if scope["path"].startswith(DOCS_PATHS) else _PLAIN

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in extra if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
