"""The console's login form under the login throttle (botmgr/throttle.py): the same
counts as the API's Basic auth, and past them the form again with status 429, a message
and ``Retry-After`` instead of a session — whether the password was right or not."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from botmgr.throttle import LoginThrottle, client_address


async def refuse_if_throttled(request: Request, username: str, *, valid: bool) -> Response | None:
    """The 429 login page if this attempt is refused, else None (``valid`` decides);
    a failed attempt is counted and logged."""
    throttle: LoginThrottle = request.app.state.core.throttle
    wait = await throttle.check(
        channel="console", address=client_address(request), username=username, valid=valid
    )
    if wait is None:
        return None
    message = f"Too many failed logins: try again in {wait} s."
    page = await request.app.state.templates.TemplateResponse(
        request, "sqladmin/login.html", {"error": message}, status_code=429
    )
    response: Response = page
    response.headers["Retry-After"] = str(wait)
    return response
