"""``GET /metrics``: Prometheus's text format, behind the operator's credentials (a
Prometheus scrape job sets ``basic_auth``; README "Metrics")."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from botmgr.monitoring import scrape
from botmgr.security import Operator

router = APIRouter(tags=["monitoring"])


# Not in the OpenAPI schema: a text format for Prometheus, not part of the JSON API.
@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, _: Operator) -> Response:
    return Response(await scrape.render(request.app), media_type=CONTENT_TYPE_LATEST)
