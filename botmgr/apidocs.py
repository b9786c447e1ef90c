"""``/docs`` (Swagger UI), ``/redoc`` (ReDoc) and ``/openapi.json``, behind the API's
credentials like every route but ``/healthz``.

The pages load nothing from another host: Swagger UI's and ReDoc's files are the ones the
``fastapi-offline`` package ships (its ``static/`` directory, pinned with the package),
served here under ``/docs/assets/`` behind the same credentials. The pages are written
here rather than with FastAPI's helpers: those default to a CDN, Google Fonts and a
favicon on fastapi.tiangolo.com, and inline their start-up script, which a Content
Security Policy without ``'unsafe-inline'`` scripts would block; Swagger UI's start-up is
a script file of its own instead. Swagger UI's validator badge (an image from
validator.swagger.io) is switched off, and ReDoc's "API docs by Redocly" logo, which it
loads from its CDN whatever its options say, is pointed at an empty ``data:`` URL
(``redoc_bundle``): it fails to load and ReDoc hides it. The browser test
(tests/admin/test_browser.py) checks that neither page makes a request to another host.
"""

from __future__ import annotations

import functools
from html import escape
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from botmgr.errors import NotFound
from botmgr.security import require_operator

ASSETS_DIR = Path(str(files("fastapi_offline") / "static"))
ASSETS = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"})
SWAGGER_INIT = """\
window.ui = SwaggerUIBundle({
  url: document.getElementById("swagger-ui").dataset.spec,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
"""

REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_operator)])


def _root(request: Request) -> str:
    return escape(str(request.scope.get("root_path", "")))


def _head(title: str, root: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n"
        f'<link rel="icon" href="{root}/docs/assets/favicon.png">\n'
    )


@router.get("/openapi.json")
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    return HTMLResponse(
        _head(f"{request.app.title} – API (Swagger UI)", root)
        + f'<link rel="stylesheet" href="{root}/docs/assets/swagger-ui.css">\n'
        + "</head>\n<body>\n"
        + f'<div id="swagger-ui" data-spec="{root}/openapi.json"></div>\n'
        + f'<script src="{root}/docs/assets/swagger-ui-bundle.js"></script>\n'
        + f'<script src="{root}/docs/assets/swagger-init.js"></script>\n'
        + "</body>\n</html>\n"
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    return HTMLResponse(
        _head(f"{request.app.title} – API (ReDoc)", root)
        + "</head>\n<body>\n"
        + f'<redoc spec-url="{root}/openapi.json"></redoc>\n'
        + f'<script src="{root}/docs/assets/redoc.standalone.js"></script>\n'
        + "</body>\n</html>\n"
    )


@router.get("/docs/assets/swagger-init.js")
async def swagger_init() -> Response:
    return Response(SWAGGER_INIT, media_type="text/javascript")


@functools.cache
def redoc_bundle() -> bytes:
    """ReDoc's bundle without its one request to another host (read once, ~1 MB)."""
    return (ASSETS_DIR / "redoc.standalone.js").read_bytes().replace(REDOC_LOGO, b"data:,")


@router.get("/docs/assets/redoc.standalone.js")
async def redoc_js() -> Response:
    return Response(redoc_bundle(), media_type="text/javascript")


@router.get("/docs/assets/{name}")
async def asset(name: str) -> Any:
    if name not in ASSETS:
        raise NotFound(f"no such documentation asset: {name}")
    return FileResponse(ASSETS_DIR / name)
