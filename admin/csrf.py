"""Cross-site request forgery: what the console refuses, and the token its forms carry.

``SameSite=Strict`` keeps the console's cookie off requests started by other *sites*, but
not by sibling subdomains (the same site), nor in old browsers; a GET link pasted by an
operator needs no other site at all. So, behind :class:`admin.auth.ConsoleGate`:

- Every unsafe request (POST, PUT, PATCH, DELETE) — the login form included — is refused
  with 403 when its ``Origin`` is present and not this origin (scheme and ``Host``; behind
  nginx the scheme is its ``X-Forwarded-Proto``, trusted by ``botmgr api``), or when its
  ``Sec-Fetch-Site`` is present and neither ``same-origin`` nor ``none`` (typed by the
  operator). For the login form this is all (login CSRF needs the one credential anyway);
  every other unsafe request also needs the session's token.
- The token: 32 random bytes kept in the signed session cookie, made on the operator's
  first request after login (login clears the session, so each login gets a new one).
  Forms send it as the ``csrf_token`` field, scripts as the ``X-CSRF-Token`` header; it is
  compared in constant time. A token of another session, or none, is refused with 403
  before anything runs.
- GET changes nothing: SQLAdmin registers actions (and logout) as GET routes; ``secure_routes``
  makes them answer GET with a confirmation page whose form POSTs, and run only on POST.
  ``static/js/console.js`` turns SQLAdmin's action buttons (which navigated by GET) into
  POST forms and adds the token to SQLAdmin's own create/edit forms.

Why not asgi-csrf or starlette-csrf: both are double-submit cookies, which a sibling
subdomain can overwrite (cookie tossing) — the case SameSite already leaves open. The token
here lives in the session, which nobody can sign but the server.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from markupsafe import Markup
from sqladmin import Admin
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_KEY = "csrf"
FIELD = "csrf_token"
HEADER = "x-csrf-token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FETCH_SITES = frozenset({"same-origin", "none"})
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_BODY = 1 << 20  # nginx allows 64 KiB; a console form is far smaller still


def token_of(session: dict[str, Any]) -> str:
    """The session's token ("" before the operator's first page after login)."""
    token = session.get(SESSION_KEY)
    return token if isinstance(token, str) else ""


def token_ok(session: dict[str, Any], given: str | None) -> bool:
    expected = token_of(session)
    if not expected or not given:
        return False
    return secrets.compare_digest(given.encode(), expected.encode())


def this_origin(scope: Scope, headers: Headers) -> str:
    return f"{scope.get('scheme', 'http')}://{headers.get('host', '')}".lower()


def cross_origin(scope: Scope, headers: Headers) -> str | None:
    """Why an unsafe request did not come from the console's own pages, or None."""
    origin = headers.get("origin")
    if origin is not None and origin.lower() != this_origin(scope, headers):
        return "cross-origin request refused"
    site = headers.get("sec-fetch-site")
    if site is not None and site.lower() not in FETCH_SITES:
        return "cross-site request refused"
    return None


async def _read_body(receive: Receive) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None  # the client went away
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """The body once more for the app behind, then the client's own messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _form_token(scope: Scope, body: bytes) -> str | None:
    async def once() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(scope, once).form(max_files=10, max_fields=100)
    except Exception:  # malformed form: no token
        return None
    value = form.get(FIELD)
    await form.close()
    return value if isinstance(value, str) else None


class CsrfGuard:
    """Inside :class:`admin.auth.ConsoleGate` (which lets only the login form and its
    stylesheet through without a session): every unsafe request from this origin, and
    apart from the login form with the session's token."""

    def __init__(self, app: ASGIApp, public_paths: frozenset[str]) -> None:
        self.app = app
        self.public_paths = public_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, root = scope["path"], scope.get("root_path", "")
        public = (path[len(root) :] if root and path.startswith(root) else path) in (
            self.public_paths
        )
        session: dict[str, Any] = scope.get("session", {})
        if not public and not token_of(session):
            session[SESSION_KEY] = secrets.token_urlsafe(32)
        if scope["method"] not in UNSAFE:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = cross_origin(scope, headers)
        if refusal is None and not public:
            receive, refusal = await self._check_token(scope, receive, headers, session)
        if refusal is not None:
            await PlainTextResponse(refusal, status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _check_token(
        self, scope: Scope, receive: Receive, headers: Headers, session: dict[str, Any]
    ) -> tuple[Receive, str | None]:
        if HEADER in headers:
            return receive, None if token_ok(session, headers[HEADER]) else "bad CSRF token"
        if not headers.get("content-type", "").startswith(FORMS):
            return receive, "CSRF token missing"
        body = await _read_body(receive)
        if body is None:
            return receive, "request body unreadable"
        ok = token_ok(session, await _form_token(scope, body))
        return _replaying(body, receive), None if ok else "bad CSRF token"


def csrf_field(request: Request) -> Markup:
    """The hidden field every console form that POSTs carries (a Jinja global)."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(
        FIELD, token_of(request.session)
    )


def csrf_token(request: Request) -> str:
    return token_of(request.session)


Endpoint = Callable[[Request], Awaitable[Response]]


def _confirm_first(admin: Admin, endpoint: Endpoint, message: str, label: str) -> Endpoint:
    """GET (a link, a prefetch, a pasted URL) shows what would happen and a form that
    POSTs it; only the POST runs ``endpoint``."""

    async def confirm_or_run(request: Request) -> Response:
        if request.method in ("GET", "HEAD"):
            context = {
                "title": label,
                "subtitle": "Confirm: nothing happens until you press the button",
                "message": message,
                "pks": request.query_params.get("pks", ""),
                "action_url": str(request.url),
                "label": label,
            }
            return await admin.templates.TemplateResponse(request, "confirm.html", context)
        return await endpoint(request)

    return confirm_or_run


def secure_routes(admin: Admin) -> None:
    """SQLAdmin's GET routes that change state (custom actions, logout) answer GET with a
    confirmation page and run on POST only. Call after every view is added."""
    wanted: dict[str, tuple[str, str]] = {"logout": ("Log out of the console?", "Log out")}
    for view in admin.views:
        labels = {
            **getattr(view, "_custom_actions_in_list", {}),
            **getattr(view, "_custom_actions_in_detail", {}),
        }
        asks = getattr(view, "_custom_actions_confirmation", {})
        for slug, label in labels.items():
            message = asks.get(slug) or f"{label}?"
            wanted[f"action-{view.identity}-{slug}"] = (message, label)
    routes = admin.admin.router.routes
    for i, route in enumerate(routes):
        if isinstance(route, Route) and route.name in wanted:
            message, label = wanted.pop(route.name)
            routes[i] = Route(
                route.path,
                endpoint=_confirm_first(admin, route.endpoint, message, label),
                methods=["GET", "POST"],
                name=route.name,
                include_in_schema=route.include_in_schema,
            )
    if wanted:  # a renamed SQLAdmin route would otherwise stay a GET that acts
        raise RuntimeError(f"console routes not found: {sorted(wanted)}")
